"""Which point of the lr range test should be the suggestion? Candidate rules on many setups.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find_rules.py [--jobs 2] [--only NAME ...]

lr_find_quality.py asks the issue's question on three presets; this one asks which rule to ship,
on 21 setups: the six names and digits presets and the 15 healthy setups of the doctor's suite
(benchmarks/broken/healthy-*.yaml: blobs, digits and names; Adam, AdamW, RMSprop, SGD with
momentum and Nesterov; tanh, sigmoid, ReLU, ELU, SiLU, leaky ReLU; with and without BatchNorm).
Each setup runs one sweep and trains, at a constant lr and its own budget, on a grid from a
hundredth of the sweep's minimum to 3x it (quarter decades) plus each rule's suggestion; a rule's
gap is its suggestion's val loss against the best lr tried. Digits and blobs cells average three
seeds, names cells take one (22,655 val contexts). Prints a row per setup and, last,
`rule R: within 2% on N/21, median gap G` per rule.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "broken"))
sys.path.insert(0, str(HERE))

from blobs import write_blobs  # noqa: E402
from doctor_suite import build_spec  # noqa: E402
from lr_find_quality import CONSTANT, WITHIN, train_at, with_overrides  # noqa: E402

from babysit import load_spec  # noqa: E402
from babysit.preflight.lr_find import FALLING, SMOOTHING, lr_range_test  # noqa: E402

GRID = [10 ** (k / 4) for k in range(-8, 3)]  # multiples of the sweep's minimum
PRESETS = {"makemore-bn": ["train.steps=10000", "train.eval_every=1000"],
           "makemore-kaiming": ["train.steps=10000", "train.eval_every=1000"],
           "makemore-deep": ["train.steps=10000", "train.eval_every=1000"],
           "digits-mlp": [], "digits-cnn": [], "digits-cnn-augment": []}


def smoothing_lag(step: int) -> float:
    """How many steps the smoothed loss at `step` trails the lr set at that step: the mean age of
    the EMA's (bias-corrected) weights, plus one because a step's loss is measured before its own
    update. About 10 steps once the average is warm: a factor 1.7 in lr at 1.055x per step."""
    weights = [SMOOTHING ** age for age in range(step + 1)]
    return sum(age * w for age, w in enumerate(weights)) / sum(weights) + 1


def _back_by_lag(sweep, i: int) -> float:
    growth = sweep.lrs[1] / sweep.lrs[0]
    return max(sweep.lrs[i] / growth ** smoothing_lag(i), sweep.lrs[0])


def _minimum(sweep) -> int:
    return min(range(len(sweep.losses)), key=sweep.losses.__getitem__)


def _most_of_the_drop(sweep) -> float:
    """Where the smoothed loss has made all but FALLING of its drop (the falling range's end seen
    the way its start is), moved back by the lag: a flat bottom does not pull it right."""
    best = _minimum(sweep)
    level = sweep.losses[best] + FALLING * (sweep.losses[0] - sweep.losses[best])
    return _back_by_lag(sweep, next(i for i, v in enumerate(sweep.losses) if v <= level))


RULES = {
    "decade below the minimum": lambda s: s.suggested,  # what babysit ships
    "minimum, back by the lag": lambda s: _back_by_lag(s, _minimum(s)),
    "most of the drop, back by the lag": _most_of_the_drop,
}


def setups(blobs: str) -> dict:
    out = {name: (load_spec(name, [*extra, *CONSTANT]), 1 if name.startswith("makemore") else 3)
           for name, extra in PRESETS.items()}
    for path in sorted((HERE / "broken").glob("healthy-*.yaml")):
        setup = {**yaml.safe_load(path.read_text()), "name": path.stem}
        spec = with_overrides(build_spec(setup, {"blobs": blobs}), CONSTANT)
        out[path.stem] = (spec, 1 if "names" in path.stem else 3)
    return out


def evaluate(item) -> tuple:
    name, (spec, seeds) = item
    sweep = lr_range_test(spec)
    low = sweep.falling[1]  # the lr at the lowest smoothed loss
    suggestions = {rule: fn(sweep) for rule, fn in RULES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        lrs = sorted({low * f for f in GRID} | set(suggestions.values()))
        vals = {lr: train_at(spec, lr, seeds, Path(tmp))[0] for lr in lrs}
    best = min(vals, key=vals.get)
    gaps = {rule: vals[lr] / vals[best] - 1 for rule, lr in suggestions.items()}
    line = (f"{name:<34} best {best:.2e} ({best / low:6.3f} x min, val {vals[best]:.4f}) "
            + "  ".join(f"{suggestions[r]:.2e}:{100 * g:7.2f}%" for r, g in gaps.items()))
    print(line, flush=True)
    return name, gaps, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1, help="setups trained at once (one core each)")
    ap.add_argument("--only", nargs="+", help="these setups only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chosen = setups(str(write_blobs(Path(tmp) / "blobs.npz")))
        if args.only:
            chosen = {k: v for k, v in chosen.items() if k in args.only}
        print("setup, best lr tried, then per rule (" + "; ".join(RULES) + "): suggested lr:gap", flush=True)
        if args.jobs > 1:
            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                results = pool.map(evaluate, list(chosen.items()), chunksize=1)
        else:
            results = [evaluate(item) for item in chosen.items()]
    print()
    for _, _, line in results:
        print(line)
    for rule in RULES:
        gaps = sorted(g[rule] for _, g, _ in results)
        made = sum(g <= WITHIN for g in gaps)
        print(f"rule {rule}: within 2% on {made}/{len(gaps)}, median gap {100 * gaps[len(gaps) // 2]:.2f}%")


if __name__ == "__main__":
    main()
