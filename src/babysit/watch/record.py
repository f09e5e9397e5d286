"""The run's Record: one JSON line per event in metrics.jsonl, flushed as written, so it is
readable while training runs and survives a kill (a torn last line is skipped on read)."""
from __future__ import annotations

import json
from pathlib import Path

from babysit.layout import METRICS, atomic_write_text, make_dir, storage_error, to_json


class Record:
    def __init__(self, run_dir: Path, filename: str = METRICS):
        self.path = Path(run_dir) / filename
        self._fh = None

    def open(self, keep_until_step: int | None = None) -> None:
        """Append; on resume, first drop events after the checkpoint's step so nothing counts twice."""
        if keep_until_step is not None and self.path.exists():
            kept = [e for e in read_events(self.path) if e.get("step", 0) <= keep_until_step]
            atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in kept))
        make_dir(self.path.parent)
        try:
            self._fh = open(self.path, "a", buffering=1)
        except OSError as exc:
            raise storage_error(self.path, exc) from None

    def log(self, kind: str, step: int, **scalars) -> None:
        line = to_json({"kind": kind, "step": step, **scalars}) + "\n"
        try:
            self._fh.write(line)
        except OSError as exc:
            raise storage_error(self.path, exc) from None

    def close(self) -> None:
        if self._fh:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError as exc:
                raise storage_error(self.path, exc) from None


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
