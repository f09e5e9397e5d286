"""Reading what a run, a search or a `--seeds` ensemble left on disk, once, for the HTML report
and the PNG plots alike: every figure and every section reads its numbers through these readers,
so the two cannot disagree. Findings, checklist results and layer rows are read as plain dicts,
whatever fields they carry, so a new finding code or Watch statistic shows up without changes here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from babysit.errors import CheckpointError
from babysit.layout import FINDINGS, METRICS, PREFLIGHT, REPAIRS, SPEC, SUMMARY, WATCH
from babysit.watch.record import read_events
from babysit.watch.table import WatchRecord

# docs/findings.md (one `## code` section per finding code: Fires when / Evidence / Fix); the
# report quotes it beside each finding when the file is there (a source checkout).
FINDINGS_DOC = Path(__file__).resolve().parents[3] / "docs" / "findings.md"
SEARCH_RESULTS = "results.json"  # written by babysit.search.report (kept in step with RESULTS_FILE there)
SEARCH_SPEC = "search.yaml"
TRIALS = "trials"


def read_json(path: Path, notes: list[str]):
    """The parsed file, or None when it is missing; a file that does not parse is a note, not a crash
    (the report of a broken run must still be written)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({exc}); it is left out")
        return None


def finite(v) -> Optional[float]:
    """A float that can be drawn, or None (NaN, inf, strings the record wrote for them, missing)."""
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


@dataclass
class RunData:
    """One run folder: what the Trainer (or a library-path Watch) and its callbacks wrote."""

    run_dir: Path
    summary: Optional[dict]
    findings: list[dict]
    findings_step: Optional[int]
    preflight: list[dict]
    spec: Optional[dict]
    spec_text: Optional[str]
    train: list[dict]  # metrics.jsonl's log windows: step, train_loss, lr
    evals: list[dict]  # metrics.jsonl's evaluations: step, val_loss, val_acc, train_acc, ...
    watch: WatchRecord
    repairs: Optional[dict]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, run_dir: Path | str, summary: Optional[dict] = None,
             findings: Optional[list[dict]] = None) -> "RunData":
        """summary / findings: given by a caller that holds fresher ones than the files (the
        Trainer's callback at the end of a run; `babysit report` on a library-path record, whose
        findings the doctor computes since no findings.json was written)."""
        run_dir = Path(run_dir)
        notes: list[str] = []
        found = read_json(run_dir / FINDINGS, notes) or {}
        spec_text = (run_dir / SPEC).read_text() if (run_dir / SPEC).is_file() else None
        events = read_events(run_dir)  # once: a run logged every step holds 200,000 lines
        return cls(run_dir=run_dir,
                   summary=summary if summary is not None else read_json(run_dir / SUMMARY, notes),
                   findings=list(findings if findings is not None else found.get("findings", [])),
                   findings_step=found.get("step"),
                   preflight=list(read_json(run_dir / PREFLIGHT, notes) or []),
                   spec=yaml.safe_load(spec_text) if spec_text else None, spec_text=spec_text,
                   train=[e for e in events if e.get("kind") == "train"],
                   evals=[e for e in events if e.get("kind") == "eval"],
                   watch=WatchRecord(run_dir), repairs=read_json(run_dir / REPAIRS, notes), notes=notes)

    @property
    def kind(self) -> str:
        """'run' (the Trainer's), 'library' (a Watch's record only) or 'empty'."""
        if (self.run_dir / SPEC).is_file() or (self.run_dir / METRICS).is_file():
            return "run"
        return "library" if (self.run_dir / WATCH).is_file() else "empty"

    @property
    def last_step(self) -> Optional[int]:
        steps = [e["step"] for e in self.train[-1:] + self.evals[-1:]]
        steps += self.watch.loss_steps[-1:] + [s["step"] for s in self.watch.samples[-1:]]
        return max(steps) if steps else None

    def train_curve(self) -> tuple[list[int], list[Optional[float]], str]:
        """The train loss per log window (metrics.jsonl); a library-path record has only Watch's
        per-step losses, averaged over windows of SMOOTH steps."""
        if self.train:
            return ([e["step"] for e in self.train], [finite(e.get("train_loss")) for e in self.train],
                    "train (log window mean)")
        losses, steps = self.watch.losses, self.watch.loss_steps
        window = max(1, min(SMOOTH, len(losses) // SMOOTH_POINTS))
        xs, ys = [], []
        for i in range(0, len(losses) - window + 1, window):
            chunk = [v for v in map(finite, losses[i:i + window]) if v is not None]
            xs.append(steps[i + window - 1])
            ys.append(sum(chunk) / len(chunk) if chunk else None)
        return xs, ys, f"train (mean of {window} steps)"

    def lr_curve(self) -> tuple[list[int], list[Optional[float]]]:
        if self.train:
            return [e["step"] for e in self.train], [finite(e.get("lr")) for e in self.train]
        lrs, steps = self.watch.lrs, self.watch.loss_steps[:len(self.watch.lrs)]
        every = max(1, len(lrs) // SMOOTH_POINTS)
        return steps[::every], [finite(v) for v in lrs[::every]]

    def first_loss(self) -> Optional[float]:
        """The loss the 3x rule compares with: step 1's (Watch), else the first log window's."""
        w = self.watch
        if w.losses and w.loss_steps[0] == 1 and finite(w.losses[0]) is not None:
            return float(w.losses[0])
        return next((finite(e.get("train_loss")) for e in self.train[:1]), None)

    def fired(self) -> list[tuple[int, str]]:
        """(step, code) where each finding fired: the first bad step its evidence names, else the
        step the doctor first reported it at (findings.json's first_step), else the step its
        evidence names, else the last step written."""
        out = []
        for f in self.findings:
            ev = f.get("evidence") or {}
            steps = [ev.get("first_bad_step"), f.get("first_step"), ev.get("step"), self.findings_step, self.last_step]
            step = next((s for s in steps if isinstance(s, int) and not isinstance(s, bool)), None)
            if step is not None:
                out.append((int(step), f.get("code", "?")))
        return sorted(out)


# The per-step train loss of a library-path record is drawn as window means: windows of a
# SMOOTH_POINTS-th of the run, at most SMOOTH steps (single batches are too noisy to read).
SMOOTH, SMOOTH_POINTS = 200, 50


def finding_docs(path: Path = FINDINGS_DOC) -> dict[str, str]:
    """{code: the text under its `## code` heading} of docs/findings.md, {} without the file."""
    if not Path(path).is_file():
        return {}
    docs, code, lines = {}, None, []
    for line in Path(path).read_text().splitlines() + ["## "]:
        if line.startswith("# ") or line.startswith("## "):
            if code:
                docs[code] = "\n".join(lines).strip()
            code = line[3:].strip().strip("`") if line.startswith("## ") else None
            lines = []
        elif code:
            lines.append(line)
    return docs


@dataclass
class SearchData:
    """A search folder: results.json (the trials, the searched ranges, each stage's narrowed
    space, the notes) and search.yaml."""

    out: Path
    trials: list[dict]
    best: Optional[dict]
    params: dict[str, dict]
    spaces: dict[int, dict]
    stages: list[dict]
    notes: dict[str, list[str]]
    edge: list[str]
    compute_steps: int
    spec_text: Optional[str]

    @classmethod
    def read(cls, out: Path | str) -> "SearchData":
        out = Path(out)
        notes: list[str] = []
        r = read_json(out / SEARCH_RESULTS, notes)
        if r is None:
            raise CheckpointError(f"{out} holds no readable {SEARCH_RESULTS}; give a folder `babysit search` "
                                  f"wrote (it writes {SEARCH_RESULTS} when the search ends)")
        spec = out / SEARCH_SPEC
        return cls(out, r.get("trials", []), r.get("best"), r.get("params", {}),
                   {int(k): v for k, v in (r.get("spaces") or {}).items()}, r.get("stages", []),
                   r.get("notes", {}), r.get("edge", []), r.get("compute_steps", 0),
                   spec.read_text() if spec.is_file() else None)

    def trial_dir(self, t: dict) -> Path:
        return self.out / t.get("run_dir", f"{TRIALS}/{t['number']:04d}")

    def best_trials(self, n: int) -> list[dict]:
        """The n lowest val losses of the last stage that finished trials (stages differ in budget)."""
        done = [t for t in self.trials if t.get("state") == "COMPLETE" and finite(t.get("value")) is not None]
        if not done:
            return []
        last = max(t["stage"] for t in done)
        return sorted((t for t in done if t["stage"] == last), key=lambda t: t["value"])[:n]


@dataclass
class EnsembleData:
    """A `babysit train --seeds N` folder: the ensemble's summary and each member's run."""

    parent: Path
    summary: dict
    members: list[RunData]

    @classmethod
    def read(cls, parent: Path | str) -> "EnsembleData":
        parent = Path(parent)
        summary = read_json(parent / SUMMARY, []) or {}
        names = summary.get("members") or sorted(p.name for p in parent.glob("member-*") if p.is_dir())
        return cls(parent, summary, [RunData.read(parent / n) for n in names])


def report_kind(path: Path) -> str:
    """'search', 'ensemble' or 'run': what `babysit report PATH` writes for this folder."""
    path = Path(path)
    if (path / SEARCH_RESULTS).is_file() or (path / SEARCH_SPEC).is_file():
        return "search"
    summary = read_json(path / SUMMARY, [])
    if (isinstance(summary, dict) and summary.get("kind") == "ensemble") or \
            (not (path / SPEC).is_file() and any(p.is_dir() for p in path.glob("member-*"))):
        return "ensemble"
    return "run"
