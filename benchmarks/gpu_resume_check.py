"""Kill-and-resume on the GPU with train.deterministic: true gives the uninterrupted run's final
loss exactly (issue 16). makemore-bn, 3,000 steps; the kill is a real SIGTERM flag set at step
1,500 (the Trainer checkpoints and raises Interrupted, as after Ctrl-C), then --resume.

    python benchmarks/gpu_resume_check.py [--out DIR] [--steps 3000] [--set KEY=VALUE ...]

Prints the rates with and without train.deterministic (what it costs), then, last: `resume: exact`
or `resume: differs by D` (train and val loss of the two runs).
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import warnings
from pathlib import Path

from babysit import Callback, build_trainer, load_spec
from babysit.errors import Interrupted


def spec_over(steps: int) -> list[str]:
    return [f"train.steps={steps}", f"schedule.milestones=[{steps // 3}]", "train.log_every=100",
            "train.eval_every=1000", "train.checkpoint_every=1000"]


class KillAt(Callback):
    def __init__(self, step: int):
        self.at = step

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        if step == self.at:
            trainer._signal = signal.SIGTERM  # what the SIGTERM handler sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--set", action="append", default=[], help="more spec overrides")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp())
    s = args.steps
    spec = load_spec("makemore-bn", [*spec_over(s), "train.deterministic=true", *args.set])
    warnings.simplefilter("ignore")
    straight = build_trainer(spec, out / "straight", progress=False).fit()
    try:
        build_trainer(spec, out / "killed", progress=False, callbacks=[KillAt(s // 2)]).fit()
        print("resume: the kill did not happen")
        return 1
    except Interrupted as exc:
        print(f"killed: {str(exc).splitlines()[0][:100]}")
    resumed = build_trainer(spec, out / "killed", progress=False, resume=True, callbacks=[KillAt(-1)]).fit()
    print(f"straight: train {straight['train_loss']!r} val {straight['val_loss']!r} ({straight['device']}, "
          f"{straight['compile']}); resumed: train {resumed['train_loss']!r} val {resumed['val_loss']!r}")
    free = build_trainer(load_spec("makemore-bn", [*spec_over(s), "train.deterministic=false", *args.set]),
                         out / "free", progress=False).fit()  # what determinism costs
    print(f"deterministic {straight['steps_per_s']:,.0f} steps/s, default {free['steps_per_s']:,.0f} steps/s "
          f"(cost {100 * (1 - straight['steps_per_s'] / free['steps_per_s']):.1f}%)")
    gap = max(abs(straight["train_loss"] - resumed["train_loss"]), abs(straight["val_loss"] - resumed["val_loss"]))
    print("resume: exact" if gap == 0 else f"resume: differs by {gap:.3g}")
    return 0 if gap == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
