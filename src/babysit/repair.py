"""Auto-repair: train, read the findings, apply their fixes to the spec, train again.

Each attempt runs in RUN/repair-K (the first one is RUN itself). When every fix of a round changes
only the optimizer or the training (lr, clipping) and the previous attempt was stopped by an error
with a checkpoint before the stop, the next attempt starts from that last good checkpoint's weights
(a fresh optimizer, its schedule at the checkpoint's step) and trains for the rest of the same
total budget, so every attempt still ends at the same budget and their val losses compare. A fix
to the init or the model restarts from scratch. What changed, why, and how each attempt started
go to RUN/repairs.json after every attempt.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Optional

from babysit.doctor.callback import DoctorCallback
from babysit.doctor.findings import Finding
from babysit.doctor.fixes import plan_fixes
from babysit.doctor.rules.loss import DIVERGE_WINDOW
from babysit.layout import CHECKPOINT, REPAIRS, write_json
from babysit.preflight import DEFAULT_CHECKS
from babysit.report.callback import write_end_report
from babysit.session import build_trainer
from babysit.spec import Spec
from babysit.train import Start
from babysit.train.checkpoint import load_checkpoint

DEFAULT_MAX_REPAIRS = 3
# Fixes that leave the model and its init alone: an attempt after them may continue from weights.
OPTIMIZER_ONLY = {"lower-lr", "raise-lr", "grad-clip"}


def train_with_repairs(spec: Spec, run_dir: Path | str, *, max_repairs: int = DEFAULT_MAX_REPAIRS,
                       preflight: Iterable[str] = DEFAULT_CHECKS, progress: bool = False,
                       echo: Callable[[str], None] = print, data=None) -> dict:
    """Train `spec`, then repair and retrain up to `max_repairs` times. Returns {"attempts": [...],
    "best": index of the attempt with the lowest val loss and no error finding}. preflight: the
    checks each attempt runs at its setup (all of them when the spec sets train.preflight)."""
    if max_repairs < 0:
        raise ValueError(f"max_repairs must be >= 0, got {max_repairs}")
    run_dir = Path(run_dir)
    attempts: list[dict] = []
    current: Optional[Spec] = spec
    doctor, specs, left = None, [], []
    for k in range(max_repairs + 1):
        out = run_dir if k == 0 else run_dir / f"repair-{k}"
        start = _checkpoint_start(attempts[-1]) if attempts else None
        doctor = DoctorCallback(**({} if start is None else
                                   {"first_loss": doctor.first_loss, "first_window": doctor.first_window}))
        # `data` is reused as is: data.preprocess (the standardize fix) lives in the model, which is
        # built from the repaired spec (babysit.nn.preprocess), so it takes effect on passed data too
        summary = build_trainer(current, out, doctor=doctor, progress=progress, data=data,
                                checks=None if current.train.preflight else list(preflight),
                                start=None if start is None else Start(start[1]["model"], start[1]["step"],
                                                                       start[1]["sampler"])).fit()
        found = doctor.findings
        # a failed attempt reports its kept model (None when it kept none); NaN stands for "none" here
        val = math.nan if summary["val_loss"] is None else summary["val_loss"]
        attempt = {"attempt": k, "run_dir": str(out), "val_loss": val, "stopped": summary["stopped"],
                   "started": "scratch" if start is None else {"checkpoint": str(start[0]), "step": start[1]["step"]},
                   "findings": [{"code": f.code, "where": f.where, "severity": f.severity} for f in found],
                   "bad_from": _bad_from(found, current), "changes": attempts[-1]["next_changes"] if attempts else []}
        echo(f"attempt {k}" + (f" (from {start[0]}, step {start[1]['step']})" if start else "")
             + f": val loss {val:.4f}"
             + (f" (stopped: {summary['stopped']})" if summary["stopped"] else ""))
        for f in found:
            echo(f.line(max(len(g.where or "-") for g in found)))
        specs.append(current)
        nxt, changes = plan_fixes(current, found)
        if k == max_repairs:  # used up: say what a further round would have tried
            left = changes
            nxt, changes = None, []
        attempt["next_changes"] = changes
        attempts.append(attempt)
        _write(run_dir, attempts)
        if nxt is None:
            break
        for c in changes:
            echo(f"  repair: {c['code']} at {c['where']}: {c['change']}")
        current = nxt
    ok = [a for a in attempts if not any(f["severity"] == "error" for f in a["findings"])
          and a["val_loss"] == a["val_loss"]]
    best = min(ok or attempts, key=lambda a: (a["val_loss"] if a["val_loss"] == a["val_loss"] else float("inf")))
    result = {"attempts": attempts, "best": best["attempt"], "spec": specs[best["attempt"]].model_dump(mode="json"),
              "unrepaired": [{"code": c["code"], "where": c["where"], "fix": c["fix"]} for c in left]}
    _write(run_dir, attempts, best["attempt"])
    write_end_report(spec, run_dir)  # the first attempt's page, now with every attempt and the best one
    repairs = [c for a in attempts for c in a["changes"]]
    echo(f"repairs ({len(repairs)}):" if repairs else "repairs: none needed or none possible")
    for a in attempts[1:]:
        for c in a["changes"]:
            echo(f"  attempt {a['attempt']}: {c['code']} at {c['where']}: {c['change']}")
    echo(f"best attempt: {best['attempt']} ({best['run_dir']}), val loss {best['val_loss']:.4f}")
    if left:
        echo(f"max_repairs ({max_repairs}) used up with fixable findings left: "
             + ", ".join(f"{c['code']} at {c['where'] or '-'} ({c['fix']})" for c in left)
             + "; raise --max-repairs to try them")
    return result


def _checkpoint_start(prev: dict):
    """(path, checkpoint state) to continue from, or None: only after optimizer-only fixes, and only
    from an attempt an error stopped (its checkpoint is the last good one, before the stop; an
    attempt that ran to the end has its checkpoint at the end of the budget)."""
    changes, stopped = prev["next_changes"], prev["stopped"]
    if not changes or any(c["fix"] not in OPTIMIZER_ONLY for c in changes) or not stopped \
            or not any(f["severity"] == "error" for f in prev["findings"]) and "non-finite" not in stopped:
        return None
    path = Path(prev["run_dir"]) / CHECKPOINT
    if not path.is_file():
        return None
    state = load_checkpoint(path, map_location="cpu")
    bad_from = prev.get("bad_from")
    return (path, state) if 0 < state["step"] and (bad_from is None or state["step"] < bad_from) else None


def _bad_from(found: list[Finding], spec: Spec) -> Optional[int]:
    """The first step an error finding's evidence reaches back to (a 3x window's first step, the
    first non-finite step): a checkpoint written at or after it is not a good one, since the stop
    rules run at log flushes, after it may have been written."""
    steps = []
    for f in found:
        ev = f.evidence or {}
        if f.severity != "error":
            continue
        if "first_bad_step" in ev:
            steps.append(ev["first_bad_step"])
        elif "first_window_loss" in ev:  # a log window's mean (no Watch)
            steps.append(ev["step"] - spec.train.log_every + 1)
        elif "step" in ev:
            steps.append(ev["step"] - DIVERGE_WINDOW + 1)
    return min(steps) if steps else None


def _write(run_dir: Path, attempts: list[dict], best: Optional[int] = None) -> None:
    write_json(run_dir / REPAIRS, {"attempts": attempts, "best": best})
