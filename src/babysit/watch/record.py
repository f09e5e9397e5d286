"""The run's Record: one JSON line per event in metrics.jsonl, flushed as written, so it is
readable while training runs and survives a kill (a torn last line is skipped on read)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from babysit.layout import METRICS


def _clean(value):
    # JSON has no NaN/Inf: None for NaN, strings for the infinities, also inside lists.
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else str(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class Record:
    def __init__(self, run_dir: Path, filename: str = METRICS):
        self.path = Path(run_dir) / filename
        self._fh = None

    def open(self, keep_until_step: int | None = None) -> None:
        """Append; on resume, first drop events after the checkpoint's step so nothing counts twice."""
        if keep_until_step is not None and self.path.exists():
            kept = [e for e in read_events(self.path) if e.get("step", 0) <= keep_until_step]
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept))
            tmp.replace(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", buffering=1)

    def log(self, kind: str, step: int, **scalars) -> None:
        event = {"kind": kind, "step": step, **{k: _clean(v) for k, v in scalars.items()}}
        self._fh.write(json.dumps(event) + "\n")

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


def read_events(path: Path, kind: str | None = None, filename: str = METRICS) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / filename
    if not path.is_file():
        return []  # e.g. a library-path run directory holds watch.jsonl only
    events = []
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if kind is None or e.get("kind") == kind:
            events.append(e)
    return events
