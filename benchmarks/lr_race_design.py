"""How babysit.lr_race's candidates and share were chosen: races replayed on recorded curves.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find_rules.py --jobs 2 --setups tuned --curves curves.json
    .venv/bin/python benchmarks/lr_race_design.py curves.json [--top 15]

With a constant lr and the same seed, a race candidate's run is the first steps of the grid's
first-seed run at that lr, so every race made of grid lrs can be replayed from the val loss each
grid run recorded at CURVE_FRACTIONS of its steps, without training. Replays every set of 2 to 6
candidates a quarter or half decade apart, each trained for a share of the run such that the race
costs at most MAX_SHARE of one run, plus successive halving (the better half of the candidates
trained on to a longer share), and prints the best designs by (setups within 2%, median gap).
Only the tuned setups' curves may go in: the held-out ones judge the chosen design afterwards.
"""
from __future__ import annotations

import argparse
import json
import math
from itertools import product
from pathlib import Path

from lr_find_rules import CURVE_FRACTIONS, GRID, RACE
from lr_find_quality import WITHIN

MAX_SHARE = 0.30  # the bar: the race costs at most 30% of one run


def _factor_key(cells: dict, factor: float) -> str:
    return min(cells, key=lambda k: abs(math.log(float(k) / factor)))


def replay(setup: dict, factors: tuple[float, ...], rungs: tuple[tuple[float, int], ...]) -> float:
    """The gap of the lr a race chooses: all candidates run to rungs[0]'s share, the best `keep`
    of them go on to the next rung's share, and so on; the last rung's best wins."""
    cells, steps = setup["cells"], setup["run_steps"]
    alive = [_factor_key(cells, f) for f in factors]
    for share, keep in rungs:
        at = max(1, round(share * steps))

        def val(key: str) -> float:
            points = dict((s, v) for s, v in cells[key]["curves"][0])
            v = points.get(at, math.inf)
            return v if math.isfinite(v) else math.inf

        alive = sorted(alive, key=lambda k: (val(k), float(k)))[:keep]
    best = min(c["val"] for c in cells.values())
    return cells[alive[0]]["val"] / best - 1


def designs():
    """(name, factors, rungs, cost) of every design within MAX_SHARE."""
    exps = [k / 4 for k in range(-8, 3)]  # the grid's exponents: multiples of the sweep's minimum
    for n, stride in product(range(2, 7), (1, 2)):
        for first in range(len(exps) - (n - 1) * stride):
            factors = tuple(10 ** exps[first + i * stride] for i in range(n))
            label = "x" + ",".join(f"{f:.3g}" for f in factors)
            for share in CURVE_FRACTIONS:
                if n * share <= MAX_SHARE + 1e-9:
                    yield f"{label} @{100 * share:g}%", factors, ((share, 1),), n * share
            for s1, s2 in product(CURVE_FRACTIONS, CURVE_FRACTIONS):  # successive halving: half go on
                keep = max(1, n // 2)
                cost = n * s1 + keep * (s2 - s1)
                if s2 > s1 and n >= 3 and cost <= MAX_SHARE + 1e-9:
                    yield f"{label} @{100 * s1:g}%, best {keep} to {100 * s2:g}%", factors, ((s1, n), (s2, 1)), cost


def check_replay(setups: list[dict]) -> float:
    """Largest relative difference between a race the benchmark ran and its replay from the curves."""
    worst = 0.0
    for s in setups:
        for lr, val in s["race"]:
            key = _factor_key(s["cells"], lr / s["low"])
            at = max(1, round(0.1 * s["run_steps"]))
            recorded = dict((st, v) for st, v in s["cells"][key]["curves"][0]).get(at)
            if recorded is not None and math.isfinite(val):
                worst = max(worst, abs(recorded - val) / val)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves", type=Path)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    setups = json.loads(args.curves.read_text())
    print(f"{len(setups)} setups; replay against the benchmark's own races: largest difference "
          f"{100 * check_replay(setups):.4f}%")
    rows = []
    for name, factors, rungs, cost in designs():
        gaps = sorted(replay(s, factors, rungs) for s in setups)
        rows.append((-sum(g <= WITHIN for g in gaps), gaps[len(gaps) // 2], cost, name, gaps[-1]))
    rows.sort()
    print(f"{'design':<58} within 2%  median gap  worst gap  cost")
    for k, median, cost, name, worst in rows[:args.top]:
        print(f"{name:<58} {-k:>5}/{len(setups)}   {100 * median:8.2f}%  {100 * worst:8.1f}%  {100 * cost:3.0f}%")
    ran = [s["gaps"][RACE] for s in setups]
    print(f"the race as the benchmark ran it: within 2% on {sum(g <= WITHIN for g in ran)}/{len(ran)}, "
          f"median gap {100 * sorted(ran)[len(ran) // 2]:.2f}%")


if __name__ == "__main__":
    main()
