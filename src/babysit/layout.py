"""A run folder: the names of the files in it, and how they are written (atomically: a kill or a
full disk mid-write leaves the previous file whole). Every room that reads or writes a run
folder takes the names from here."""
from __future__ import annotations

import os
from pathlib import Path

SPEC = "spec.yaml"  # the resolved spec
CHECKPOINT = "checkpoint.pt"  # model, optimizer, schedule, sampler and RNG states (exact resume)
SUMMARY = "summary.json"  # the final figures
METRICS = "metrics.jsonl"  # one JSON line per log flush / evaluation, readable while training
WATCH = "watch.jsonl"  # Watch's per-layer samples and per-step losses
PREFLIGHT = "preflight.json"  # the checklist's results
FINDINGS = "findings.json"  # the doctor's findings
EMA = "ema.pt"  # the EMA of the weights (train.ema)
SNAPSHOTS = "snapshots"  # snapshot-NNNNNNNNN.pt per cosine_restarts cycle (train.snapshots)
REPAIRS = "repairs.json"  # the repair attempts (train --repair)
PLOTS = "plots"  # the PNG figures (babysit plot)
REPORT = "report.html"  # the run's report, one self-contained page (babysit report)


def atomic_write_bytes(path: Path, write) -> None:
    """write(fh) into a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))
