"""The doctor inside the Trainer: rules at every log flush (the cheap stop rules), at every
evaluation and at the end. An error finding stops training before the next checkpoint is
written, so the checkpoint on disk is the last good one; findings go to RUN/findings.json."""
from __future__ import annotations

import json
from typing import Iterable

from babysit.doctor.diagnose import STOP_RULES, diagnose
from babysit.doctor.findings import Finding
from babysit.doctor.view import RunView
from babysit.train.callbacks import Callback
from babysit.train.checkpoint import atomic_write_text

FINDINGS = "findings.json"
PREFLIGHT = "preflight.json"  # written by `train.preflight: true`; read when present
# Checks cheap enough to run before every training run (a pass over the train inputs); the
# costlier ones (overfit-tiny, regularization) run when asked for.
DEFAULT_PREFLIGHT = ("data",)


class DoctorCallback(Callback):
    def __init__(self, preflight: Iterable[str] = DEFAULT_PREFLIGHT, stop_on_error: bool = True):
        self.preflight_names, self.stop_on_error = tuple(preflight), stop_on_error
        self.preflight: list[dict] = []
        self.evals: list[dict] = []
        self.findings: list[Finding] = []

    def on_train_begin(self, trainer) -> None:
        from babysit.preflight.checklist import run_checks
        from babysit.preflight.setup import setup_from_spec

        if self.preflight_names and not trainer.spec.train.preflight:  # else preflight.json has them all
            setup = setup_from_spec(trainer.spec, trainer.data, trainer.model)
            self.preflight = [r.as_dict() for r in run_checks(setup, names=list(self.preflight_names))]

    def view(self, trainer, finished: bool = False) -> RunView:
        preflight = list(self.preflight)
        path = trainer.run_dir / PREFLIGHT
        if path.is_file():  # the full checklist's results take precedence, check by check
            written = json.loads(path.read_text())
            names = {r["name"] for r in written}
            preflight = written + [r for r in preflight if r["name"] not in names]
        b = trainer.spec.train.batch_size
        batch = len(trainer.train_split) if b == "full" else b
        kw = dict(model=trainer.model, batch_size=batch, evals=self.evals, preflight=preflight,
                  num_classes=trainer.data.num_classes, finished=finished)
        if trainer.watch is None:
            return RunView(**kw)
        return RunView.from_watch(trainer.watch, **kw)

    def _stop(self, trainer, found: list[Finding]) -> None:
        errors = [f for f in found if f.severity == "error"]
        if errors and self.stop_on_error and trainer.stop_reason is None:
            f = errors[0]
            trainer.stop_reason = (f"doctor: {f.code} at {f.where} by step {trainer.step} ({f.evidence}); "
                                   f"the last good checkpoint is kept. {f.advice}")

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        if trainer.watch is not None:
            self._stop(trainer, diagnose(self.view(trainer), STOP_RULES))

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        self.evals.append({"step": step, **metrics})
        self.findings = diagnose(self.view(trainer))
        self._stop(trainer, self.findings)
        self._write(trainer)

    def on_train_end(self, trainer, summary: dict) -> None:
        self.findings = diagnose(self.view(trainer, finished=True))
        self._write(trainer, summary.get("stopped"))

    def _write(self, trainer, stopped=None) -> None:
        atomic_write_text(trainer.run_dir / FINDINGS, json.dumps(
            {"step": trainer.step, "stopped": stopped or trainer.stop_reason,
             "findings": [f.as_dict() for f in self.findings], "preflight": self.preflight}, indent=2))
