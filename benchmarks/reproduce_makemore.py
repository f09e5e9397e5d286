"""Reproduce the MM3 loss log (LECTURES.md §5) with the five makemore presets, run in full.

    .venv/bin/python benchmarks/reproduce_makemore.py [--presets a,b] [--steps N] [--out DIR]

Prints ours vs the reference per row and whether val is within ±0.03 (the issue's bar).
Each full run is 200,000 SGD steps: a few minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from babysit import build_trainer, load_spec
from babysit.reference import MM3_LOSS_LOG as REFERENCE, MM3_TOLERANCE as TOLERANCE  # LECTURES.md §5: (train, val)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(REFERENCE))
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (smoke runs)")
    ap.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    args = ap.parse_args()
    rows = []
    for name in args.presets.split(","):
        overrides = [] if args.steps is None else [f"train.steps={args.steps}",
                                                   f"schedule.milestones=[{args.steps // 2}]"]
        spec = load_spec(name, overrides)
        run_dir = args.out / name
        if (run_dir / "summary.json").exists():
            summary = json.loads((run_dir / "summary.json").read_text())
        else:
            summary = build_trainer(spec, run_dir, progress=False).fit()
        ref_train, ref_val = REFERENCE[name]
        ok = abs(summary["val_loss"] - ref_val) <= TOLERANCE
        rows.append((name, summary["train_loss"], ref_train, summary["val_loss"], ref_val, summary["wall_s"], ok))
        print(f"{name}: train {summary['train_loss']:.4f} val {summary['val_loss']:.4f} "
              f"({summary['wall_s']:.0f} s)", flush=True)
    print()
    print(f"| preset | train (ours) | train (ref) | val (ours) | val (ref) | val diff | wall s | within ±{TOLERANCE} |")
    print("|---|---|---|---|---|---|---|---|")
    for name, tr, rtr, va, rva, wall, ok in rows:
        print(f"| {name} | {tr:.4f} | {rtr} | {va:.4f} | {rva} | {va - rva:+.4f} | {wall:.0f} | {'yes' if ok else 'NO'} |")
    print(f"\nwithin ±{TOLERANCE} of the reference val loss: {sum(r[-1] for r in rows)}/{len(rows)}")


if __name__ == "__main__":
    main()
