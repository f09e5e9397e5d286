"""Trainer vs a bare PyTorch loop on makemore-deep: same model, data, batch and optimizer.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trainer_overhead.py [--steps 10000] [--rounds 5]

(One thread: on two cores, two threads make these small matrices slower and the timings noisy.)

The bare loop is what one writes by hand (MM3 style, without per-step .item()): sample a batch
by index, forward, cross-entropy, zero_grad, backward, SGD step, lr drop at the milestone by hand.
The Trainer runs as users run it, with its defaults: progress bar, record, schedule, log flushes,
and the Watch (per-layer statistics) at its default sampling. Its rate is timed
from the start of the loop to its last step, as the bare loop's is; the end-of-run work the bare
loop does not do (evaluating both whole splits for summary.json, the final checkpoint) is timed
apart and printed beside it.
Rounds alternate bare/Trainer; the median of the paired ratios is reported.
Prints, last: `trainer/bare steps per second: R` (the issue's bar: R >= 0.95).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from babysit import Callback, build_trainer, load_spec
from babysit.data import build_data
from babysit.models import build_model
from babysit.build import select_device


def bare_loop(spec, data, steps: int) -> float:
    device = select_device()
    torch.manual_seed(spec.seed)
    model = build_model(spec, data).to(device)
    xtr, ytr = data.train.x.to(device), data.train.y.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=spec.optim.lr)
    milestone = steps // 2
    t0 = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, xtr.shape[0], (spec.train.batch_size,), device=device)
        loss = F.cross_entropy(model(xtr[ix]), ytr[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if i == milestone:
            for g in opt.param_groups:
                g["lr"] = spec.optim.lr * 0.1
        opt.step()
    loss.item()  # wait for the device before stopping the clock
    return steps / (time.perf_counter() - t0)


class LoopClock(Callback):
    """Stops the clock at the last step's log flush, before the end-of-run evaluation."""

    def on_train_begin(self, trainer) -> None:
        self.t0 = time.perf_counter()

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        if step == trainer.total_steps:
            self.t_loop = time.perf_counter()


def trainer_run(spec, data, steps: int, out: Path) -> tuple[float, float]:
    clock = LoopClock()
    build_trainer(spec, out, data=data, callbacks=[clock], progress=True).fit()
    return steps / (clock.t_loop - clock.t0), time.perf_counter() - clock.t_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    s = args.steps
    spec = load_spec("makemore-deep", [f"train.steps={s}", f"schedule.milestones=[{s // 2}]",
                                       f"train.eval_every={s}", f"train.checkpoint_every={s}"])
    data = build_data(spec.data)
    print(f"makemore-deep, {s} steps of batch {spec.train.batch_size} on {select_device()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bare_loop(spec, data, 500)  # warm-up: allocator, kernels
    bare, trainer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bare.append(bare_loop(spec, data, s))
            rate, end_s = trainer_run(spec, data, s, Path(tmp) / f"run{r}")
            trainer.append(rate)
            print(f"round {r + 1}: bare {bare[-1]:,.0f} steps/s, trainer {rate:,.0f} steps/s "
                  f"(+ {end_s:.2f} s end-of-run evaluation and checkpoint)")
    # Each Trainer run against the bare run just before it, then the median: paired, so a slow
    # minute on a shared machine cancels out.
    ratio = statistics.median(t / b for t, b in zip(trainer, bare))
    print(f"median: bare {statistics.median(bare):,.0f} steps/s, trainer {statistics.median(trainer):,.0f} steps/s")
    print(f"trainer/bare steps per second: {ratio:.3f}")


if __name__ == "__main__":
    main()
