"""Watch's cost on makemore-deep, measured in one run against a bare PyTorch loop.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watch_overhead.py [--block 1000] [--rounds 15] [--every N]

Three loops on the same model, data and batch:
  bare        forward, backward, SGD step, nothing else;
  by hand     bare + what MM3 does per step: lossi.append(loss.log10().item()) and the
              update:data ratio of every parameter with .item() (a host sync per number);
  watch       bare + babysit.Watch(model, optimizer) at its default sampling.
The loops run in alternating blocks, in an order that rotates every round; each block is compared
with the bare block of its round and the median of those ratios is reported, so machine noise
hits all loops alike.
Prints, last: `watch overhead at default sampling: X%` (the issue's bar: X <= 3).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from babysit import load_spec
from babysit.data import build_data
from babysit.models import build_model
from babysit.build import select_device
from babysit.watch.watch import Watch


class Loop:
    """One of the three loops, with its own model, kept alive across blocks so that blocks of the
    three kinds can alternate: noise on this shared machine then hits all of them alike."""

    def __init__(self, kind: str, spec, data, every: int, grad_norm_every_step: bool = False):
        device = select_device()
        torch.manual_seed(spec.seed)
        self.kind, self.batch, self.lr = kind, spec.train.batch_size, spec.optim.lr
        self.model = build_model(spec, data).to(device)
        self.params = list(self.model.parameters())
        self.x, self.y = data.train.x.to(device), data.train.y.to(device)
        self.opt = torch.optim.SGD(self.params, lr=self.lr)
        self.watch = (Watch(self.model, self.opt, every=every, grad_norm_every_step=grad_norm_every_step)
                      if kind == "watch" else None)
        self.lossi, self.ud = [], []

    def block(self, steps: int) -> float:
        """Steps per second over one block (the Watch flushes at its end: part of its cost)."""
        t0 = time.perf_counter()
        for _ in range(steps):
            ix = torch.randint(0, self.x.shape[0], (self.batch,), device=self.x.device)
            loss = F.cross_entropy(self.model(self.x[ix]), self.y[ix])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if self.kind == "by hand":
                self.lossi.append(loss.log10().item())
                with torch.no_grad():
                    self.ud.append([((self.lr * p.grad).std() / p.data.std()).log10().item()
                                    for p in self.params if p.ndim == 2])
            elif self.watch is not None:
                self.watch.step(loss)
        if self.watch is not None:
            self.watch.flush()
        loss.item()
        return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block", type=int, default=1000, help="steps per timed block")
    ap.add_argument("--rounds", type=int, default=21, help="blocks per loop")
    ap.add_argument("--every", type=int, default=load_spec("makemore-deep").watch.every,
                    help="Watch sampling (default: the spec default)")
    ap.add_argument("--grad-norm-every-step", action="store_true",
                    help="also the global gradient norm at every step (off by default in Watch)")
    args = ap.parse_args()
    spec = load_spec("makemore-deep")
    data = build_data(spec.data)
    print(f"makemore-deep, batch {spec.train.batch_size} on {select_device()}, "
          f"{torch.get_num_threads()} threads, Watch every {args.every} steps"
          + (", gradient norm every step" if args.grad_norm_every_step else ""))
    loops = {kind: Loop(kind, spec, data, args.every, args.grad_norm_every_step)
             for kind in ("bare", "by hand", "watch")}
    for loop in loops.values():
        loop.block(200)  # warm-up
    rates = {kind: [] for kind in loops}
    kinds = list(loops)
    for r in range(args.rounds):
        for kind in kinds[r % 3:] + kinds[:r % 3]:  # rotate the order: no loop always runs first
            rates[kind].append(loops[kind].block(args.block))
    print(f"{args.rounds} alternating blocks of {args.block} steps each")
    med = {k: statistics.median(v) for k, v in rates.items()}
    overhead = {}
    for kind in ("by hand", "watch"):
        # Each block against the bare block of the same round, then the median of those ratios:
        # paired, so a slow minute on the machine cancels out.
        overhead[kind] = 100 * (statistics.median(b / k for b, k in zip(rates["bare"], rates[kind])) - 1)
        print(f"{kind:8s}: {med[kind]:,.0f} steps/s (bare {med['bare']:,.0f}), overhead {overhead[kind]:.1f}%")
    print(f"watch overhead at default sampling: {overhead['watch']:.1f}%")


if __name__ == "__main__":
    main()
