"""Auto-repair: train, read the findings, apply their fixes to the spec, train again.

Every attempt restarts from scratch in RUN/repair-K (the first one is RUN itself). A fix to the
init or the model must start from scratch anyway; an lr fix could continue from the last good
checkpoint, but restarting keeps every attempt at the same budget, so their val losses compare.
What changed and why goes to RUN/repairs.json after every attempt.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Optional

from babysit.doctor.callback import DoctorCallback
from babysit.doctor.findings import SEVERITIES, Finding
from babysit.doctor.fixes import FIX_GROUPS, apply, last_resort
from babysit.spec import Spec, spec_from_dict
from babysit.train.checkpoint import atomic_write_text

REPAIRS = "repairs.json"
DEFAULT_MAX_REPAIRS = 3


def plan_fixes(spec: Spec, findings: Iterable[Finding]) -> tuple[Optional[Spec], list[dict]]:
    """The repaired spec and the list of changes, or (None, []) when no finding has a fix left.
    Errors first; one fix per fix name and per group. One lr change per round: the direction of the
    most severe lr finding, by the largest factor any finding in that direction asks for."""
    raw = spec.model_dump(mode="json")
    done_fix, done_group, changes = set(), set(), []
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    ordered = sorted(findings, key=lambda f: rank[f.severity])
    late = [f for f in ordered if last_resort(raw, f)]
    ordered = [f for f in ordered if f not in late] + late
    for f in ordered:
        group = FIX_GROUPS.get(f.fix, f.fix)
        if f.fix is None or f.fix in done_fix or group in done_group or (f in late and changes):
            continue
        if group == "lr":
            f = _strongest(raw, [g for g in ordered if g.fix == f.fix])
        change = apply(raw, f)
        if change is None:
            continue
        done_fix.add(f.fix)
        done_group.add(group)
        changes.append({"code": f.code, "where": f.where, "severity": f.severity, "fix": f.fix, "change": change})
    if not changes:
        return None, []
    return spec_from_dict(raw, f"{spec.name} (repaired)"), changes


def _strongest(raw: dict, same_way: list[Finding]) -> Finding:
    """Of the findings asking to move the lr one way, the one that moves it furthest."""
    import copy

    def lr_after(f):
        trial = copy.deepcopy(raw)
        return apply(trial, f) and trial["optim"]["lr"]
    lrs = [(lr_after(f), f) for f in same_way]
    lrs = [(lr, f) for lr, f in lrs if lr]
    if not lrs:
        return same_way[0]
    pick = min if same_way[0].fix == "lower-lr" else max
    return pick(lrs, key=lambda t: t[0])[1]


def train_with_repairs(spec: Spec, run_dir: Path | str, *, max_repairs: int = DEFAULT_MAX_REPAIRS,
                       preflight: Iterable[str] = ("data",), progress: bool = False,
                       echo: Callable[[str], None] = print, data=None) -> dict:
    """Train `spec`, then repair and retrain up to `max_repairs` times. Returns {"attempts": [...],
    "best": index of the attempt with the lowest val loss and no error finding}."""
    from babysit.train.trainer import Trainer

    if max_repairs < 0:
        raise ValueError(f"max_repairs must be >= 0, got {max_repairs}")
    run_dir = Path(run_dir)
    attempts: list[dict] = []
    current: Optional[Spec] = spec
    for k in range(max_repairs + 1):
        out = run_dir if k == 0 else run_dir / f"repair-{k}"
        doctor = DoctorCallback(preflight=preflight)
        summary = Trainer(current, out, callbacks=[doctor], progress=progress, data=data).fit()
        found = doctor.findings
        attempt = {"attempt": k, "run_dir": str(out), "val_loss": summary["val_loss"], "stopped": summary["stopped"],
                   "findings": [{"code": f.code, "where": f.where, "severity": f.severity} for f in found],
                   "changes": attempts[-1]["next_changes"] if attempts else []}
        echo(f"attempt {k}: val loss {summary['val_loss']:.4f}"
             + (f" (stopped: {summary['stopped']})" if summary["stopped"] else ""))
        for f in found:
            echo(f"  {f.severity:<8}{f.code:<24}{f.where or '-':<12}{f.advice}")
        nxt, changes = plan_fixes(current, found) if k < max_repairs else (None, [])
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
    result = {"attempts": attempts, "best": best["attempt"], "spec": current.model_dump(mode="json")}
    _write(run_dir, attempts, best["attempt"])
    repairs = [c for a in attempts for c in a["changes"]]
    echo(f"repairs ({len(repairs)}):" if repairs else "repairs: none needed or none possible")
    for a in attempts[1:]:
        for c in a["changes"]:
            echo(f"  attempt {a['attempt']}: {c['code']} at {c['where']}: {c['change']}")
    echo(f"best attempt: {best['attempt']} ({best['run_dir']}), val loss {best['val_loss']:.4f}")
    return result


def _write(run_dir: Path, attempts: list[dict], best: Optional[int] = None) -> None:
    atomic_write_text(run_dir / REPAIRS, json.dumps({"attempts": attempts, "best": best}, indent=2))


def repair_command(spec: Spec, out: Optional[Path], resume: bool, quiet: bool, max_repairs: int) -> dict:
    """`babysit train SPEC --repair`: the repair loop with the CLI's run directory and messages."""
    import click

    from babysit.runs import new_run_dir

    if resume:
        raise click.UsageError("--repair starts from scratch; it cannot be combined with --resume")
    run_dir = out or new_run_dir(spec.name)
    click.echo(f"run directory: {run_dir} (repairs under {run_dir}/repair-K, log in {run_dir / REPAIRS})")
    return train_with_repairs(spec, run_dir, max_repairs=max_repairs, progress=not quiet, echo=click.echo)
