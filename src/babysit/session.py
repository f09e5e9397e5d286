"""Assembling a run from a spec: the one place that decides what a run gets besides the training
loop. The checklist at setup (all of it with train.preflight, else the cheap data check the doctor
reads), EMA and snapshots when the spec asks, the caller's callbacks, the doctor, a progress bar,
the HTML report at the end (train.report).
Whatever trains from a spec (the CLI, repair, --seeds, search, finetune) builds its Trainer here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import torch

from babysit.data import Dataset
from babysit.doctor.callback import DoctorCallback
from babysit.preflight import CHECKS, DEFAULT_CHECKS
from babysit.preflight.checklist import ChecklistCallback
from babysit.report import callback as report
from babysit.spec import Spec
from babysit.train import Callback, Start, Trainer
from babysit.train.averaging import EMA
from babysit.train.callbacks import ProgressBar
from babysit.train.distributed import DistributedTrainer, launched
from babysit.train.snapshots import Snapshots


def spec_callbacks(spec: Spec) -> list[Callback]:
    """The callbacks a spec asks for (train.ema, train.snapshots)."""
    out: list[Callback] = []
    if spec.train.ema is not None:
        out.append(EMA(spec.train.ema.decay))
    if spec.train.snapshots:
        out.append(Snapshots())
    return out


def build_trainer(spec: Spec, run_dir: Path | str, *, resume: bool = False, progress: bool = True,
                  data: Optional[Dataset] = None, callbacks: Iterable[Callback] = (),
                  doctor: Union[bool, DoctorCallback] = True, checks: Optional[Sequence[str]] = None,
                  optimizer_factory: Optional[Callable[[torch.nn.Module], torch.optim.Optimizer]] = None,
                  start: Optional[Start] = None) -> Trainer:
    """A Trainer for `spec` with everything a run gets. `callbacks` come first (they may prepare
    the model at setup, before the checklist looks at it). doctor: False, True, or a
    DoctorCallback of the caller's (a repair attempt's, with its reference losses). checks: the
    checklist's check names; by default every check with train.preflight (a failure stops the
    run), else DEFAULT_CHECKS when the doctor runs (reported to it, never stopping the run)."""
    if checks is None:
        checks = list(CHECKS) if spec.train.preflight else (DEFAULT_CHECKS if doctor else ())
    checklist = ChecklistCallback(checks, stop_on_fail=spec.train.preflight) if checks else None
    if doctor is True:
        doctor = DoctorCallback(checklist)
    elif doctor and doctor.checklist is None:
        doctor.checklist = checklist
    chain = [*callbacks, *([checklist] if checklist else []), *spec_callbacks(spec),
             *([doctor] if doctor else []), *([ProgressBar()] if progress else []),
             # last: it reads what the others wrote
             *([report.ReportCallback()] if report.writes_report(spec) else [])]
    # a worker of torch's launcher (torchrun, babysit train --nproc): one rank of a DDP run
    cls = DistributedTrainer if launched() else Trainer
    return cls(spec, run_dir, callbacks=chain, resume=resume, data=data,
                   optimizer_factory=optimizer_factory, start=start)
