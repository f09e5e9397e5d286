"""How babysit.lr_race's candidates and share were chosen: races replayed on recorded curves.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find_rules.py --curves curves.jsonl
    .venv/bin/python benchmarks/lr_race_design.py curves.jsonl [--top 15] [--held-out]

With a constant lr and the same seed, a race candidate's run is the first steps of the grid's
first-seed run at that lr, so every race made of grid lrs can be replayed from the val loss each
grid run recorded at CURVE_FRACTIONS of its steps, without training. Replays every set of 2 to 6
candidates a quarter or half decade apart, each trained for a share of the run such that the race
costs at most MAX_SHARE of one run, plus successive halving (the better half of the candidates
trained on to a longer share); each design also in variants that counter the short race's bias
towards high lrs (a short run rewards fast progress; the full run rewards the lower loss a lower lr
settles at): the lowest lr whose val loss is within TOLERANCES of the race's best, and the winner
moved SHIFTS quarter decades down. Prints the best designs by (setups within 2%, median gap, worst gap, cost) on
the tuned setups only; --held-out then scores the top designs on the held-out setups, which never
chose anything.
"""
from __future__ import annotations

import argparse
import json
import math
from itertools import product
from pathlib import Path

from lr_find_rules import CURVE_FRACTIONS, HELD_OUT, RACE, check_replay, replay
from lr_find_quality import WITHIN

MAX_SHARE = 0.30  # the bar: the race costs at most 30% of one run


TOLERANCES = (0.0, 0.01, 0.02, 0.05)  # the lowest lr within this of the race's best val loss wins
SHIFTS = (0, -1, -2)  # then moved this many quarter decades (the grid's step)
def designs():
    """(name, factors, rungs, cost, tolerance, shift, late) of every design within MAX_SHARE."""
    exps = [k / 4 for k in range(-8, 3)]  # the grid's exponents: multiples of the sweep's minimum
    for n, stride in product(range(2, 7), (1, 2)):
        for first in range(len(exps) - (n - 1) * stride):
            factors = tuple(10 ** exps[first + i * stride] for i in range(n))
            label = "x" + ",".join(f"{f:.3g}" for f in factors)
            plans = [(f"@{100 * share:g}%", ((share, 1),), n * share) for share in CURVE_FRACTIONS]
            keep = max(1, n // 2)  # successive halving: the better half go on
            plans += [(f"@{100 * s1:g}%, best {keep} to {100 * s2:g}%", ((s1, keep), (s2, 1)), n * s1 + keep * (s2 - s1))
                      for s1, s2 in product(CURVE_FRACTIONS, CURVE_FRACTIONS) if s2 > s1 and n >= 3]
            for plan, rungs, cost in plans:
                if cost > MAX_SHARE + 1e-9:
                    continue
                for tolerance, shift, late in product(TOLERANCES, SHIFTS, (False, True)):
                    extra = ((f" tol {100 * tolerance:g}%" if tolerance else "") + (f" shift {shift}" if shift else "")
                             + (" late mean" if late else ""))
                    yield f"{label} {plan}{extra}", factors, rungs, cost, tolerance, shift, late


def score(setups: list[dict], design) -> tuple[int, float, float]:
    """(setups within 2%, median gap, worst gap); a design that leaves the grid on any setup: None."""
    _, factors, rungs, _, tolerance, shift, late = design
    gaps = sorted(replay(s, factors, rungs, tolerance, shift, late)[1] for s in setups)
    if any(math.isnan(g) for g in gaps):
        return None
    return sum(g <= WITHIN for g in gaps), gaps[len(gaps) // 2], gaps[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves", type=Path)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--held-out", action="store_true", help="also score the top designs on the held-out setups")
    args = ap.parse_args()
    every = [json.loads(line) for line in args.curves.read_text().splitlines() if line.strip()]
    setups = [s for s in every if s["name"] not in HELD_OUT]
    held = [s for s in every if s["name"] in HELD_OUT]
    print(f"{len(setups)} tuned setups; replay against the benchmark's own races: largest difference "
          f"{100 * check_replay(setups):.4f}%")
    rows = []
    for design in designs():
        scored = score(setups, design)
        if scored is not None:
            k, median, worst = scored
            rows.append((-k, median, worst, design[3], design[0], design))
    rows.sort(key=lambda r: r[:5])
    print(f"{'design':<64} within 2%  median gap  worst gap  cost" + ("  held out" if args.held_out else ""))
    for k, median, worst, cost, name, design in rows[:args.top]:
        line = f"{name:<64} {-k:>5}/{len(setups)}   {100 * median:8.2f}%  {100 * worst:8.1f}%  {100 * cost:3.0f}%"
        if args.held_out and held:
            h = score(held, design)
            line += f"  {h[0]}/{len(held)}, {100 * h[1]:.2f}%" if h else "  off the grid"
        print(line)
    ran = [s["gaps"][RACE] for s in setups]
    print(f"the race as the benchmark ran it: within 2% on {sum(g <= WITHIN for g in ran)}/{len(ran)}, "
          f"median gap {100 * sorted(ran)[len(ran) // 2]:.2f}%")


if __name__ == "__main__":
    main()
