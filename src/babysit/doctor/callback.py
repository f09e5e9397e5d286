"""The doctor inside the Trainer: rules at every log flush (the cheap stop rules), at every
evaluation and at the end. An error finding stops training before the next checkpoint is
written, so the checkpoint on disk is the last good one; findings go to RUN/findings.json. The
checklist's results (the data check: data-not-centered, ...) come from the run's checklist
callback, whatever ran it (babysit.session wires the two).

A resumed run's live Watch starts at the checkpoint's step; the rules see the whole run anyway:
the record up to the checkpoint (read once, at the start) is joined to the live state."""
from __future__ import annotations

import json
from typing import Optional

from babysit.doctor.diagnose import STOP_RULES, diagnose
from babysit.doctor.findings import Finding
from babysit.doctor.rules.loss import DIVERGE_WINDOW, diverged_window
from babysit.doctor.view import RunView, keep_samples
from babysit.layout import FINDINGS, write_json
from babysit.train.callbacks import Callback
from babysit.watch.record import read_events


class DoctorCallback(Callback):
    def __init__(self, checklist=None, stop_on_error: bool = True,
                 first_loss: Optional[float] = None, first_window: Optional[float] = None):
        """checklist: the run's checklist callback (its `results`, CheckResult dicts, once run), or
        None. first_loss / first_window: the step-1 loss and first log window's mean of the run
        this one continues (a repair attempt started from a checkpoint), the stop rules' reference."""
        self.checklist, self.stop_on_error = checklist, stop_on_error
        self.evals: list[dict] = []
        self.findings: list[Finding] = []
        self.stop_findings: list[Finding] = []  # stop findings the full rules cannot see (no Watch)
        self.history: Optional[RunView] = None  # a resumed run's record up to its checkpoint
        self.first_loss, self.first_window = first_loss, first_window
        self._scanned, self._tail, self._sample_step = 0, [], 0  # the stop rules' progress
        self.first_steps: dict[tuple, int] = {}  # (code, where) -> the step it was first written at

    def on_train_begin(self, trainer) -> None:
        if trainer.resume:
            self._load_history(trainer)

    def _preflight(self) -> list[dict]:
        """The checklist's results: this run's, or those of the run it resumes."""
        ran = self.checklist.results if self.checklist is not None else []
        return list(ran or (self.history.preflight if self.history is not None else []))

    def _load_history(self, trainer) -> None:
        """The record up to the checkpoint (the Trainer has already cut what came after it)."""
        try:
            h = RunView.from_run_dir(trainer.run_dir)
        except FileNotFoundError:
            return
        self.history = h
        self.evals = list(h.evals)
        if self.first_loss is None and h.loss_start == 1 and h.losses:
            self.first_loss = h.losses[0]
        self._tail = h.losses[-(DIVERGE_WINDOW - 1):]
        self._sample_step = h.samples[-1]["step"] if h.samples else 0
        try:  # when each finding was first reported, up to the checkpoint
            written = json.loads((trainer.run_dir / FINDINGS).read_text())["findings"]
        except (OSError, ValueError, KeyError, TypeError):
            written = []
        self.first_steps.update({(d.get("code"), d.get("where")): d["first_step"] for d in written
                                 if isinstance(d.get("first_step"), int) and d["first_step"] <= trainer.step})
        windows = read_events(trainer.run_dir, "train")
        if self.first_window is None and windows:
            self.first_window = windows[0].get("train_loss")

    def view(self, trainer, finished: bool = False) -> RunView:
        kw = dict(model=trainer.model, batch_size=trainer.batch_size, evals=self.evals,
                  preflight=self._preflight(), num_classes=trainer.data.num_classes,
                  loss_kind=trainer.loss_kind, finished=finished)
        if trainer.watch is None:
            return RunView(**kw)
        v = RunView.from_watch(trainer.watch, **kw)
        h = self.history
        if h is not None:
            v.losses, v.lrs, v.loss_start = h.losses + v.losses, h.lrs + v.lrs, h.loss_start
            v.samples = keep_samples(h.samples + v.samples)
            v.order = v.order or h.order
        elif v.loss_start != 1:  # a continued repair attempt: its reference is the run's start
            v.first_loss = self.first_loss
        return v

    def _stop(self, trainer, found: list[Finding]) -> None:
        errors = [f for f in found if f.severity == "error"]
        if errors and self.stop_on_error and trainer.stop_reason is None:
            f = errors[0]
            trainer.stop(f"doctor: {f.code} at {f.where} by step {trainer.step} ({f.evidence}). {f.advice}", failed=True)

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        if self.first_window is None:
            self.first_window = scalars["train_loss"]
        elif trainer.watch is None:
            f = diverged_window(self.first_window, scalars["train_loss"], step)
            if f is not None:
                self.stop_findings.append(f)
                self._stop(trainer, [f])
        if trainer.watch is not None:
            self._stop(trainer, diagnose(self._new_window(trainer.watch), STOP_RULES))

    def _new_window(self, watch) -> RunView:
        """What the stop rules have not seen yet: the losses since the last flush (after the few
        before them that a window mean needs) and the new samples. O(window) per flush where a
        full rescan was O(steps): 8.8 ms per flush at 200,000 steps."""
        watch.flush()
        live_start = watch.steps - len(watch.losses) + 1
        if self.first_loss is None and self.history is None and live_start == 1 and watch.losses:
            self.first_loss = watch.losses[0]
        new = watch.losses[self._scanned:]
        losses = self._tail + new
        start = live_start + self._scanned - len(self._tail)
        samples = []
        for s in reversed(watch.samples):
            if s["step"] <= self._sample_step:
                break
            samples.append(s)
        first = getattr(watch, "first_sample", None)
        if first is not None and first["step"] > self._sample_step and all(s is not first for s in samples):
            samples.append(first)
        samples.reverse()
        self._scanned = len(watch.losses)
        self._tail = losses[-(DIVERGE_WINDOW - 1):]
        self._sample_step = max([self._sample_step] + [s["step"] for s in samples])
        return RunView(losses=losses, loss_start=start, samples=samples, first_loss=self.first_loss)

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        self.evals.append({"step": step, **metrics})
        self.findings = self._with_stops(diagnose(self.view(trainer)))
        self._stop(trainer, self.findings)
        self._write(trainer)

    def on_train_end(self, trainer, summary: dict) -> None:
        self.findings = self._with_stops(diagnose(self.view(trainer, finished=True)))
        self._write(trainer, summary.get("stopped"))

    def _with_stops(self, found: list[Finding]) -> list[Finding]:
        seen = {(f.code, f.where) for f in found}
        return [f for f in self.stop_findings if (f.code, f.where) not in seen] + found

    def _write(self, trainer, stopped=None) -> None:
        """findings.json; each finding with first_step, the step the doctor first reported it at
        (the report marks it on the loss curve)."""
        for f in self.findings:
            self.first_steps.setdefault((f.code, f.where), trainer.step)
        write_json(trainer.run_dir / FINDINGS,
            {"step": trainer.step, "stopped": stopped or trainer.stop_reason,
             "findings": [{**f.as_dict(), "first_step": self.first_steps[(f.code, f.where)]}
                          for f in self.findings]})
