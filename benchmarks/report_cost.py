"""What the end-of-run report costs (issue 17): its size (at most 3 MB for a 200,000-step run) and
the time to write it (at most 5% of the run's wall time), on makemore-bn run in full.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/report_cost.py [--steps N] [--out DIR]

Trains the preset (train.report on: the Trainer writes RUN/report.html at the end), or reuses a
finished run in OUT, then writes the report again ROUNDS times and takes the median, so the
figure is the report's own cost, not the first import of matplotlib.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from babysit import build_trainer, load_spec
from babysit.layout import REPORT, SUMMARY
from babysit.report.run_page import write_report

ROUNDS = 3
MAX_BYTES = 3_000_000  # the bars
MAX_SHARE = 0.05


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="makemore-bn")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (smoke runs)")
    ap.add_argument("--out", type=Path, default=Path("runs/report-cost"))
    args = ap.parse_args()
    overrides = [] if args.steps is None else [f"train.steps={args.steps}", f"schedule.milestones=[{args.steps // 2}]"]
    spec = load_spec(args.preset, overrides)
    run_dir = args.out / spec.name
    if not (run_dir / SUMMARY).is_file():
        build_trainer(spec, run_dir, progress=False).fit()
    summary = json.loads((run_dir / SUMMARY).read_text())
    times = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        write_report(run_dir)
        times.append(time.perf_counter() - t)
    size = (run_dir / REPORT).stat().st_size
    took, wall = statistics.median(times), summary["wall_s"]
    print(f"{spec.name}: {summary['steps']:,} steps, run wall time {wall:.1f} s")
    print(f"report: {size / 1e6:.2f} MB ({size:,} bytes; bar {MAX_BYTES / 1e6:.2f} MB): "
          f"{'ok' if size <= MAX_BYTES else 'OVER'}")
    print(f"write time: median {took:.2f} s of {ROUNDS} ({', '.join(f'{t:.2f}' for t in times)}) = "
          f"{100 * took / wall:.2f}% of the run's wall time (bar {100 * MAX_SHARE:.0f}%): "
          f"{'ok' if took <= MAX_SHARE * wall else 'OVER'}")


if __name__ == "__main__":
    main()
