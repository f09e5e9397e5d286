"""A run folder: the names of the files in it, and how they are written (atomically: a kill or a
full disk mid-write leaves the previous file whole, and no temporary file behind). Every room that
reads or writes a run folder takes the names from here. A write that fails is one StorageError
naming the path and the cause."""
from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

from babysit.errors import StorageError

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


# What to do about the usual causes of a failed write
ADVICE = {errno.ENOSPC: "the disk is full: free some space (the files already written are whole; "
                        "`babysit train ... --resume` continues from the last checkpoint)",
          errno.EROFS: "the file system is read-only: choose another --out",
          errno.EACCES: "permission denied: choose another --out",
          errno.ENOTDIR: "a part of the path is a file, not a folder: choose another --out",
          errno.EEXIST: "a file stands where a folder should be: choose another --out"}


def storage_error(path: Path, exc: OSError, doing: str = "write") -> StorageError:
    advice = ADVICE.get(exc.errno)
    return StorageError(f"cannot {doing} {path}: {exc.strerror or exc}" + (f"; {advice}" if advice else ""))


def make_dir(path: Path) -> Path:
    """mkdir -p, or one StorageError naming the folder and the cause."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(path, exc, "create the folder") from None
    if not path.is_dir():
        raise storage_error(path, OSError(errno.EEXIST, "a file stands there"), "create the folder")
    return path


def check_writable(path: Path) -> Path:
    """Before compute is spent on what `path` will hold: its folder exists (made if need be) and
    takes a file. A StorageError naming the path and the cause otherwise."""
    path = Path(path)
    folder = make_dir(path.parent)
    probe = folder / f".babysit-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise storage_error(path, exc) from None
    return path


def atomic_write_bytes(path: Path, write) -> None:
    """write(fh) into a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = _os_error(exc)  # torch.save reports a full disk as a RuntimeError raised while handling it
        if cause is not None:
            raise storage_error(path, cause) from None
        raise


def _os_error(exc: BaseException):
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def json_safe(value):
    """JSON has no NaN or Infinity: null for NaN, the strings "inf" / "-inf", at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def to_json(value, indent=None, default=None) -> str:
    """Valid JSON always: the fast encoder first, json_safe only when a NaN or Inf is there."""
    try:
        return json.dumps(value, indent=indent, allow_nan=False, default=default)
    except ValueError:
        return json.dumps(json_safe(value), indent=indent, allow_nan=False, default=default)


def write_json(path: Path, value, indent: int = 2, default=None) -> None:
    atomic_write_text(path, to_json(value, indent, default))
