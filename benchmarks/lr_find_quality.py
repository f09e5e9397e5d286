"""Does the lr range test's suggestion train as well as a grid search? (Preflight issue, item 3)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find_quality.py [--names-steps N] [--presets P ...] [--seeds N]

For each of three presets (one names, two digits) it runs `lr_range_test` on the preset, then
trains the preset at the suggested lr and at seven log-spaced lrs around it (half a decade apart,
suggested x 10^-1.5 .. x 10^1.5; the middle one is the suggestion itself), all at the same budget
and with a constant lr, and compares final val losses (the digits rows average three seeds: their
val split holds 180 images, so one run's val loss is noisy; the names val split holds 22,655
contexts). Prints the table and, last,
`lr-find within X of grid best on N/3 presets` where X is the worst relative gap among the
presets that made it and a preset makes it when its gap is at most 2%.
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from babysit import build_trainer, load_spec
from babysit.preflight.lr_find import lr_range_test
from babysit.spec import Spec, apply_overrides, spec_from_dict

GRID = [10 ** (k / 2) for k in range(-3, 4)]  # seven factors, half a decade apart
WITHIN = 0.02  # the bar: the suggestion's val loss within 2% of the grid's best
CONSTANT = ["schedule.name=constant", "schedule.milestones=[]"]  # every run at one lr throughout


def with_overrides(spec: Spec, overrides: list[str]) -> Spec:
    return spec_from_dict(apply_overrides(spec.model_dump(mode="json"), overrides, spec.name), spec.name)


def train_at(spec: Spec, lr: float, seeds: int, out: Path) -> tuple[float, float]:
    """Mean final val loss over `seeds` runs (seed 0, 1, ...: init and batch order), and the
    standard error of that mean relative to it (nan for one seed): the noise a gap competes with."""
    losses = []
    for seed in range(seeds):
        run = with_overrides(spec, [f"optim.lr={lr}", f"seed={seed}", "watch.enabled=false"])
        summary = build_trainer(run, out / f"{spec.name}-{lr!r}-{seed}", progress=False).fit()
        losses.append(summary["val_loss"] if math.isfinite(summary["val_loss"]) else float("inf"))
    mean = sum(losses) / len(losses)
    if len(losses) < 2 or not math.isfinite(mean):
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in losses) / (len(losses) - 1)
    return mean, math.sqrt(var / len(losses)) / mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names-steps", type=int, default=10_000, help="budget of the makemore-* runs")
    ap.add_argument("--presets", nargs="+", default=["makemore-bn", "digits-mlp", "digits-cnn"],
                    help="presets to compare (the issue's three by default; others make a held-out check)")
    ap.add_argument("--seeds", type=int, default=3, help="runs averaged per digits cell")
    args = ap.parse_args()
    names = [f"train.steps={args.names_steps}", "train.eval_every=1000", *CONSTANT]
    presets = {p: (names, 1) if p.startswith("makemore") else (CONSTANT, args.seeds) for p in args.presets}
    rows, gaps = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (overrides, seeds) in presets.items():
            spec = load_spec(name, overrides)
            sweep = lr_range_test(spec)
            cells = {f: train_at(spec, sweep.suggested * f, seeds, Path(tmp)) for f in GRID}
            losses = {f: mean for f, (mean, _) in cells.items()}
            best_f = min(losses, key=losses.get)
            gaps[name] = (losses[1.0] - losses[best_f]) / losses[best_f]
            rows.append((name, sweep, losses, best_f, cells[best_f][1]))
            print(f"{name}: suggested lr {sweep.suggested:.2e} (falls {sweep.falling[0]:.1e}..{sweep.falling[1]:.1e}, "
                  f"3x at {sweep.stopped_at or float('nan'):.1e})", flush=True)
    print()
    print(f"{'preset':<18} " + " ".join(f"{'x' + format(f, '.3g'):>9}" for f in GRID) + "   best lr      gap   noise")
    for name, sweep, losses, best_f, noise in rows:
        cells = " ".join(f"{losses[f]:9.4f}" for f in GRID)
        spread = "-" if math.isnan(noise) else f"{100 * noise:.1f}%"
        print(f"{name:<18} {cells}   {sweep.suggested * best_f:.2e}  {100 * gaps[name]:6.2f}%  {spread:>6}")
    print("(val loss at the preset's budget; columns are multiples of the suggested lr; x1 is the suggestion;\n"
          " noise: the standard error of the best cell's seed mean, relative to it)")
    made = [g for g in gaps.values() if g <= WITHIN]
    worst = max(made) if made else min(gaps.values())
    print(f"lr-find within {100 * worst:.2f}% of grid best on {len(made)}/{len(presets)} presets")


if __name__ == "__main__":
    main()
