"""What a search leaves behind: the table of trials, best.yaml (a complete spec for the winner,
ready for `babysit train`), results.json, and one plot per parameter of the validation loss
against its value (log axis for log parameters), coloured by stage to show the narrowing
(drawn by babysit.report.plots from results.json, as the HTML report draws it)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from optuna.trial import TrialState

from babysit.layout import atomic_write_text, write_json
from babysit.search.runner import TRIALS_DIR, spec_with, stage_space
from babysit.search.stages import edge_side
from babysit.search.study import FAILED
from babysit.spec import SearchSpec, Spec, dump_spec

BEST_FILE = "best.yaml"
RESULTS_FILE = "results.json"
PLOTS_DIR = "plots"
# A failed trial's reason in the table: its first line, cut to this many characters (the whole
# message is in results.json); about a terminal line's worth beside the other columns.
REASON_CHARS = 100


@dataclass
class TrialRow:
    number: int
    stage: int
    state: str
    params: dict
    steps: int
    value: Optional[float]
    worker: str = ""
    note: str = ""


@dataclass
class SearchResult:
    rows: list[TrialRow]
    search: SearchSpec
    best: Optional[TrialRow]
    best_spec: Optional[Spec]
    compute_steps: int  # training steps actually run by finished trials (pruned ones: until pruned)
    notes: dict[int, list[str]] = field(default_factory=dict)
    spaces: dict[int, dict] = field(default_factory=dict)


def _reason(why: str) -> str:
    first = why.strip().splitlines()[0] if why.strip() else why
    return first if len(first) <= REASON_CHARS else first[:REASON_CHARS - 3] + "..."


def _note(t) -> str:
    notes = []
    if "promoted_from" in t.user_attrs:
        notes.append(f"#{t.user_attrs['promoted_from']} trained longer")
    if "failed_trial" in t.system_attrs:
        notes.append(f"re-run of #{t.system_attrs['retry_history'][-1]}")
    if t.state == TrialState.PRUNED and "pruned" in t.user_attrs:
        notes.append(f"pruned: {t.user_attrs['pruned']}")
    if t.state == TrialState.FAIL and FAILED in t.user_attrs:
        notes.append(f"failed: {t.user_attrs[FAILED]}")
    elif t.state == TrialState.FAIL:
        notes.append("interrupted; queued again")
    return "; ".join(notes)


def collect(study, base: Spec, out: Path) -> SearchResult:
    rows = [TrialRow(t.number, t.user_attrs.get("stage", -1), t.state.name, dict(t.params),
                     int(t.user_attrs.get("steps", 0)), t.value if t.state == TrialState.COMPLETE else None,
                     t.user_attrs.get("worker", ""), _note(t))
            for t in study.get_trials(deepcopy=False)]
    finished = [r for r in rows if r.state in ("COMPLETE", "PRUNED")]
    complete = [r for r in rows if r.state == "COMPLETE" and r.value is not None and math.isfinite(r.value)]
    best = None
    if complete:
        last = max(r.stage for r in complete)  # stages differ in budget: compare the longest only
        best = min((r for r in complete if r.stage == last), key=lambda r: r.value)
    best_spec = spec_with(base, best.params, f"{base.name}-best") if best else None
    stages = sorted({r.stage for r in rows if r.stage >= 0})
    attrs = study.user_attrs  # one read of the study's attributes (a storage round trip)
    notes = {s: attrs.get(f"stage{s}", {}).get("notes", []) for s in stages}
    spaces = {s: stage_space(study, s, attrs) for s in stages if f"stage{s}" in attrs}
    return SearchResult(rows, base.search, best, best_spec, sum(r.steps for r in finished), notes, spaces)


def trials_table(result: SearchResult, title: str = "trials"):
    """A rich Table: one row per trial, by stage then loss."""
    from rich.table import Table

    names = list(result.search.params)
    table = Table(title=title)
    for col in ["#", "stage", "state", *names, "steps", "val loss"]:
        table.add_column(col, justify="right")
    table.add_column("note", justify="left")
    order = sorted(result.rows, key=lambda r: (r.stage, r.value if r.value is not None else math.inf, r.number))
    for r in order:
        vals = [f"{r.params[n]:.3g}" if isinstance(r.params.get(n), float) else str(r.params.get(n, "-"))
                for n in names]
        loss = f"{r.value:.4f}" if r.value is not None else {"PRUNED": "pruned", "FAIL": "failed"}.get(r.state, "-")
        style = "bold green" if result.best and r.number == result.best.number else None
        table.add_row(str(r.number), str(r.stage + 1), r.state.lower(), *vals, str(r.steps), loss,
                      _reason(r.note), style=style)
    return table


def edge_warnings(result: SearchResult) -> list[str]:
    """The best value of each numeric parameter that sits at the edge of the last stage's range:
    the lectures' "good values belong in the middle"; the next search should widen that side."""
    if result.best is None:
        return []
    space = result.spaces.get(result.best.stage) or result.search.params
    out = []
    for name, p in space.items():
        value = result.best.params.get(name)
        if p.type == "categorical" or value is None:
            continue
        side = edge_side(p, value)
        if side is not None:
            out.append(f"{name}: the best value {value:.3g} sits at the {side} edge of the last stage's range "
                       f"[{p.low:.3g}, {p.high:.3g}]{' (log scale)' if p.log else ''}; widen that side and search again")
    return out


def write_outputs(result: SearchResult, out: Path) -> list[Path]:
    out = Path(out)
    written = []
    if result.best_spec is not None:
        b = result.best
        header = (f"# best of the search in {out}: trial {b.number} (stage {b.stage + 1}, {b.steps} steps), "
                  f"val loss {b.value:.4f}\n# {json.dumps(b.params)}; train budget as in the searched spec\n")
        atomic_write_text(out / BEST_FILE, header + dump_spec(result.best_spec))
        written.append(out / BEST_FILE)
    summary = {"best": result.best.__dict__ if result.best else None, "compute_steps": result.compute_steps,
               "notes": {str(k): v for k, v in result.notes.items()},
               "trials": [{**r.__dict__, "run_dir": f"{TRIALS_DIR}/{r.number:04d}"} for r in result.rows],
               # what the report draws: the searched ranges, each stage's (narrowed) space, the budgets
               "params": {k: {**p.model_dump(mode="json"), "log": p.log} for k, p in result.search.params.items()},
               "spaces": {str(s): {k: p.model_dump(mode="json") for k, p in sp.items()}
                          for s, sp in result.spaces.items()},
               "stages": [st.model_dump(mode="json") for st in result.search.stages],
               "edge": edge_warnings(result)}
    write_json(out / RESULTS_FILE, summary, indent=1, default=str)
    written.append(out / RESULTS_FILE)
    from babysit.report.plots import write_search_plots  # matplotlib, only when there is something to draw

    written.extend(write_search_plots(out, out / PLOTS_DIR))
    return written
