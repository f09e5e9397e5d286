"""BabysitCallback's cost in a PyTorch Lightning fit, against the same fit without it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lightning_overhead.py [--block 1000] [--rounds 11]

makemore-deep's network (5 hidden layers of 100 with BatchNorm and tanh) as a LightningModule on
the names data, batch 32 from a DataLoader, SGD. Each round runs one fit with the callback and one
without, in an order that alternates every round; a fit is timed from its WARM-th step to its last
(Lightning's own set-up and the first steps are left out of both), and the median over rounds of
the paired ratio is the overhead, so noise on the machine hits both alike. The one-time costs at
the ends (the checklist at the start; findings and plots at the end) are timed apart.
Prints, last: `callback overhead per step: X%` (the issue's bar: X <= 3).
"""
from __future__ import annotations

import argparse
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
from babysit.lightning import BabysitCallback
from babysit.models import build_model

WARM = 50  # steps before the clock starts: the first ones pay for allocation and set-up


class Lit(L.LightningModule):
    def __init__(self, net, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class Clock(L.Callback):
    """Seconds from the end of step WARM to the end of the last step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == WARM:
            self.t0 = time.perf_counter()
        self.t1 = time.perf_counter()


def fit(spec, data, loader, steps: int, babysit: bool, run_dir: Path) -> tuple[float, dict]:
    """Steps per second between the clock's marks, and the callback's one-time costs."""
    torch.manual_seed(spec.seed)
    model = Lit(build_model(spec, data), spec.optim.lr)
    clock = Clock()
    extra = []
    if babysit:
        extra = [BabysitCallback(run_dir, echo=lambda line: None)]
    trainer = L.Trainer(max_steps=WARM + steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[*extra, clock])
    t_start = time.perf_counter()
    trainer.fit(model, loader)
    t_end = time.perf_counter()
    once = {"fit_s": t_end - t_start, "steps_s": clock.t1 - clock.t0}
    return steps / (clock.t1 - clock.t0), once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block", type=int, default=1000, help="timed steps per fit")
    ap.add_argument("--rounds", type=int, default=11, help="fits of each kind")
    args = ap.parse_args()
    import logging
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    spec = load_spec("makemore-deep")
    data = build_data(spec.data)
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=spec.train.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    print(f"makemore-deep as a LightningModule, batch {spec.train.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds of {args.block} timed steps per fit (after {WARM} warm-up steps)")
    rates = {"bare": [], "babysit": []}
    outside = {"bare": [], "babysit": []}  # seconds of each fit outside the timed steps
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ["bare", "babysit"] if r % 2 == 0 else ["babysit", "bare"]
            for kind in order:
                rate, once = fit(spec, data, loader, args.block, kind == "babysit", Path(tmp) / f"run{r}")
                rates[kind].append(rate)
                outside[kind].append(once["fit_s"] - once["steps_s"])
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = statistics.median(b / k for b, k in zip(rates["bare"], rates["babysit"]))
    print(f"bare Lightning fit: {med['bare']:,.0f} steps/s; with BabysitCallback: {med['babysit']:,.0f} steps/s")
    extra = statistics.median(b - a for a, b in zip(outside["bare"], outside["babysit"]))
    print(f"one-time cost of the callback per fit: {extra:.2f} s (the checklist at the start; findings and "
          f"plots at the end), beside {statistics.median(outside['bare']):.2f} s of Lightning's own set-up")
    print(f"callback overhead per step: {100 * (ratio - 1):.1f}%")


if __name__ == "__main__":
    main()
