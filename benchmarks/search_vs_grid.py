"""Coarse-to-fine random search against a 7 x 7 log grid, in one run (LECTURES.md §4).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search_vs_grid.py [--steps 5000] [--out DIR]

Both search learning rate (log 1e-3 .. 1) x weight decay (log 1e-6 .. 1e-1) of the `makemore-bn`
preset (SGD, BatchNorm) at a constant lr for --steps steps:
  grid            7 x 7 = 49 trials of --steps steps (sampler grid);
  coarse-to-fine  16 random trials of --steps/5 steps, then 8 random trials of --steps steps in the
                  ranges narrowed around the best quarter of the first stage.
Both compare the validation loss of their best --steps-step trial. Compute is the training steps
actually run (a pruned trial counts the steps it ran). Prints both tables and, last:
`coarse-to-fine: val V at P% of the grid's compute; grid best G` (the issue's bar: |V - G| <= 0.02,
P <= 35).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from babysit.search.driver import run_search
from babysit.search.report import trials_table
from babysit.spec import load_spec

PARAMS = {"optim.lr": {"type": "log_uniform", "low": 1e-3, "high": 1.0},          # LECTURES.md §4:
          "optim.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-1}}  # scales in log space
GRID_POINTS = 7
COARSE_TRIALS, FINE_TRIALS = 16, 8   # 16 x (steps/5) + 8 x steps = 11.2 x steps, vs 49 x steps for the grid
COARSE_FRACTION = 5                  # the coarse stage trains a fifth of the budget


def base_overrides(steps: int) -> list[str]:
    return [f"train.steps={steps}", "schedule.name=constant", "schedule.milestones=[]",
            f"train.log_every={max(steps // 50, 1)}", f"train.eval_every={steps}", "watch.enabled=false"]


def run(kind: str, steps: int, out: Path, console: Console):
    if kind == "grid":
        search = {"params": PARAMS, "sampler": "grid", "grid_points": GRID_POINTS, "stages": [{"steps": steps}]}
    else:
        search = {"params": PARAMS, "sampler": "random",
                  "stages": [{"trials": COARSE_TRIALS, "steps": steps // COARSE_FRACTION},
                             {"trials": FINE_TRIALS, "steps": steps}]}
    spec = load_spec("makemore-bn", base_overrides(steps) + [f"search={search}", f"name=bench-{kind}"])
    t0 = time.perf_counter()
    result = run_search(spec, out / kind, echo=console.print)
    wall = time.perf_counter() - t0
    console.print(trials_table(result, f"{kind}: {len(result.rows)} trials, {result.compute_steps:,} "
                                       f"training steps, {wall:.0f} s"))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="budget of a full trial (both searches)")
    ap.add_argument("--out", type=Path, help="where the two searches go (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="search_vs_grid-"))
    console = Console(width=120)
    console.print(f"makemore-bn, constant-lr SGD, {args.steps} steps per full trial, 1 thread; folders in {out}")
    grid = run("grid", args.steps, out, console)
    c2f = run("coarse-to-fine", args.steps, out, console)
    for name, r in (("grid", grid), ("coarse-to-fine", c2f)):
        b = r.best
        console.print(f"{name:>15}: best val {b.value:.4f} at lr {b.params['optim.lr']:.3g}, "
                      f"wd {b.params['optim.weight_decay']:.3g}; {r.compute_steps:,} training steps")
    pct = 100.0 * c2f.compute_steps / grid.compute_steps
    print(f"coarse-to-fine: val {c2f.best.value:.4f} at {pct:.0f}% of the grid's compute; "
          f"grid best {grid.best.value:.4f}")


if __name__ == "__main__":
    main()
