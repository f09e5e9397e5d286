"""BabysitCallback's cost in a PyTorch Lightning fit, against the same fit without it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lightning_overhead.py [--pairs 30] [--block 200]

makemore-deep's network (5 hidden layers of 100 with BatchNorm and tanh) as a LightningModule on
the names data, batch 32 from a shuffling DataLoader (the partial last batch dropped, as
BatchNorm needs), SGD. One fit runs in blocks of `block`
steps, and the callback is in the Trainer's callback list in every other block only (Lightning
reads the list at every hook call), so the two kinds of block alternate a second apart and a busy
minute on the machine hits both alike; whole fits with and without it, run one after the other,
differed by +-10% between rounds on our shared machine. Each block with the callback is compared
with the block without it that follows, and the median of those ratios is the overhead. A block
is a multiple of Watch's sampling (one step in 200) and of the callback's log window, so each
block with the callback holds its share of sampled steps and doctor windows.
The one-time costs at the ends (the checklist at the start, findings and plots at the end) are
timed apart. Prints, last: `callback overhead per step: X%` (the issue's bar: X <= 3).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from babysit import load_spec
from babysit.data import build_data
from babysit.lightning import LOG_EVERY, BabysitCallback
from babysit.models import build_model

WARM_BLOCKS = 2  # blocks before the first pair: the first steps pay for allocation and set-up


class Lit(L.LightningModule):
    def __init__(self, net, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Alternate(L.Callback):
    """Times each block and moves `babysit` in or out of the Trainer's callbacks at its end."""

    def __init__(self, babysit: BabysitCallback, block: int):
        self.babysit, self.block = babysit, block
        self.blocks: list[tuple[bool, float]] = []  # (with the callback, seconds)
        self.t0 = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.block:
            return
        now = time.perf_counter()
        present = self.babysit in trainer.callbacks
        if self.t0 is not None:
            self.blocks.append((present, now - self.t0))
        # a new list: Lightning is iterating over the old one for this very hook
        trainer.callbacks = [c for c in trainer.callbacks if c is not self.babysit] if present \
            else [self.babysit, *trainer.callbacks]
        self.t0 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=30, help="pairs of blocks (with, without the callback)")
    ap.add_argument("--block", type=int, default=2 * LOG_EVERY, help="steps per block")
    args = ap.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    spec = load_spec("makemore-deep")
    data = build_data(spec.data)
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=spec.train.batch_size, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(0))
    steps = args.block * (WARM_BLOCKS + 2 * args.pairs)
    print(f"makemore-deep as a LightningModule, batch {spec.train.batch_size}, {torch.get_num_threads()} threads: "
          f"one fit of {steps} steps, the callback in every other block of {args.block}")
    torch.manual_seed(spec.seed)
    with tempfile.TemporaryDirectory() as tmp:
        babysit = BabysitCallback(Path(tmp) / "run", echo=lambda line: None)
        alternate = Alternate(babysit, args.block)
        # the callback is in the list at the start (its checklist and Watch start with the fit) and
        # the block count is even, so it is in the list again at the end (findings, plots)
        trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[babysit, alternate])
        t_start = time.perf_counter()
        trainer.fit(Lit(build_model(spec, data), spec.optim.lr), loader)
        total = time.perf_counter() - t_start
    blocks = alternate.blocks[WARM_BLOCKS - 1:]  # the first block has no start mark: one fewer timed
    pairs = [(on, off) for (with1, on), (with2, off) in zip(blocks[::2], blocks[1::2]) if with1 and not with2]
    ratios = sorted(on / off for on, off in pairs)
    ratio = statistics.median(ratios)
    q1, q3 = ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
    on_s = statistics.median(on for on, _ in pairs)
    off_s = statistics.median(off for _, off in pairs)
    print(f"{len(pairs)} pairs of blocks: {args.block / off_s:,.0f} steps/s without the callback, "
          f"{args.block / on_s:,.0f} with it; ratio quartiles {q1:.3f} {ratio:.3f} {q3:.3f}")
    print(f"one-time, outside the blocks: {total - sum(t for _, t in alternate.blocks):.2f} s of the fit "
          "(Lightning's set-up, the checklist, the first blocks, findings and plots)")
    print(f"callback overhead per step: {100 * (ratio - 1):.1f}%")


if __name__ == "__main__":
    main()
