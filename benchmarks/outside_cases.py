"""The doctor on training programs other people wrote: broken and healthy programs from published
material (AUTOTRAINER's demo cases, DeepLocalize's Stack Overflow benchmark, DeepFD, GitHub issues
of PyTorch projects), each re-expressed as a small plain PyTorch loop on synthetic data with
babysit.Watch in it, run on three seeds (benchmarks/outside/: one module per source).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/outside_cases.py [--case NAME] [--seeds 0 1 2]

A broken case-seed counts for the symptom when a finding carries one of the case's accepted codes,
and for localization (cases whose fault is a layer) when such a finding names that layer. A
healthy case-seed is a false alarm when any warning or error is found (info is allowed).
Prints a table and, last: `outside cases: symptom R, localized L, false alarms F/H`.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outside import autotrainer, stackoverflow, github, healthy  # noqa: E402,F401  (register the cases, in this order)
from outside.data import CASES  # noqa: E402


def judge(case, findings) -> dict:
    serious = [f for f in findings if f.severity in ("warning", "error")]
    hits = [f for f in findings if f.code in case.accepted]
    return {"symptom": bool(hits), "localized": any(f.where == case.layer for f in hits),
            "alarm": bool(serious), "codes": sorted({f"{f.code}@{f.where}" for f in (serious or findings)})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", help="run only these cases (repeatable)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # Watch's "no activation" notice on purpose-built linear cases
    cases = [c for c in CASES if not args.case or c.name in args.case]
    rows, t0 = [], time.perf_counter()
    print(f"{'case':<36}{'kind':<9}{'symptom':>8}{'located':>9}  found (seed {args.seeds[0]})")
    for case in cases:
        results = [judge(case, case.run(seed).findings()) for seed in args.seeds]
        rows.append((case, results))
        n = len(results)
        if case.healthy:
            cols = f"{'-':>8}{'-':>9}"
            kind = "healthy" if not any(r["alarm"] for r in results) else "ALARM"
        else:
            hit = sum(r["symptom"] for r in results)
            loc = f"{sum(r['localized'] for r in results)}/{n}" if case.layer is not None else "-"
            cols, kind = f"{hit}/{n:<6}"[:8].rjust(8) + f"{loc:>9}", "broken" if hit == n else "MISSED"
        found = ", ".join(results[0]["codes"]) or "-"
        print(f"{case.name:<36}{kind:<9}{cols}  {found}")
    broken = [r for c, rs in rows if not c.healthy for r in rs]
    located = [r for c, rs in rows if not c.healthy and c.layer is not None for r in rs if r["symptom"]]
    healthy_runs = [r for c, rs in rows if c.healthy for r in rs]
    symptom = sum(r["symptom"] for r in broken) / max(len(broken), 1)
    localized = sum(r["localized"] for r in located) / max(len(located), 1)
    alarms = sum(r["alarm"] for r in healthy_runs)
    print(f"{len([c for c, _ in rows if not c.healthy])} broken and {len([c for c, _ in rows if c.healthy])} "
          f"healthy programs, seeds {args.seeds}, {time.perf_counter() - t0:.0f} s")
    print(f"outside cases: symptom {symptom:.2f}, localized {localized:.2f}, "
          f"false alarms {alarms}/{len(healthy_runs)}")


if __name__ == "__main__":
    main()
