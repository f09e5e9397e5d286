"""Running trials: a trial's spec (the base spec with the sampled values set through the spec's
own override mechanism, at the stage's budget), training it with the Trainer while reporting its
loss to Optuna, and a worker's loop over queued trials."""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from pathlib import Path
from typing import Optional

import numpy as np
import optuna
from optuna.trial import TrialState

from babysit.search.study import FAILED, TRAINED_BY, claim, fail_killed_trials, heartbeat
from babysit.session import build_trainer
from babysit.spec import INT_TYPES, ParamSpec, Spec, SpecError, apply_overrides, spec_from_dict
from babysit.train.batches import BatchSampler
from babysit.train.callbacks import Callback

TRIALS_DIR = "trials"
# Log flushes (loss reports to Optuna) per trial: a blow-up is caught within 5% of the budget.
REPORTS_PER_TRIAL = 20
# Trials skip Watch: nobody reads their per-layer statistics, and it costs time (watch_overhead.py).
TRIAL_WATCH = False
# How often an idle worker looks for queued trials (seconds).
POLL_S = 0.5

log = logging.getLogger(__name__)


def tell(study: optuna.Study, trial: optuna.Trial, value: Optional[float] = None,
         state: Optional[TrialState] = None):
    """study.tell that survives a trial already finished elsewhere (the coordinator took this
    worker for dead and failed it, or a second worker got it): logged, the worker goes on.
    Returns the finished trial, or None when it was finished already."""
    try:
        if study._storage.get_trial(trial._trial_id).state.is_finished():
            raise optuna.exceptions.UpdateFinishedTrialError(f"trial {trial.number} is already finished")
        return study.tell(trial, value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError as why:
        log.warning("trial %d: result not recorded (%s)", trial.number, why)
        return None


def _set_attr(trial: optuna.Trial, key: str, value) -> None:
    try:
        trial.set_user_attr(key, value)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # finished elsewhere meanwhile; tell() logs it


def set_values(raw: dict, values: dict, source: str) -> dict:
    """Set dotted-path values in a spec dict with `--set`'s mechanism (JSON is valid YAML)."""
    return apply_overrides(raw, [f"{k}={json.dumps(v)}" for k, v in values.items()], source)


def spec_with(base: Spec, values: dict, name: Optional[str] = None) -> Spec:
    """The base spec with `values` set and no search section: what `babysit train` would run."""
    raw = base.model_dump(mode="json")
    raw["search"] = None
    if name:
        raw["name"] = name
    return spec_from_dict(set_values(raw, values, "search values"), f"search values {values}")


def steps_per_epoch(spec: Spec, data) -> int:
    """Batches per epoch exactly as the Trainer's sampler counts them (drops the partial batch)."""
    n = len(data.train)
    return BatchSampler.batches_per_epoch(n, spec.train.batch_for(n))


def trial_log_every(log_every: int, steps: int) -> int:
    """A trial logs (and reports to its pruner) REPORTS_PER_TRIAL times or more often."""
    return max(1, min(log_every, steps // REPORTS_PER_TRIAL))


def trial_spec(base: Spec, values: dict, steps: int, name: str, per_epoch: Optional[int] = None) -> Spec:
    """`spec_with` at a stage's budget: `steps` steps, one evaluation at the end, the schedule's
    milestones and warm-up scaled to the shorter run, no mid-run checkpoints, no Watch.

    per_epoch (batches per epoch) is needed when the base spec counts epochs, to know its length
    in steps; without it such a spec's warm-up cannot be scaled and must fit in the stage."""
    raw = base.model_dump(mode="json")
    raw["search"], raw["name"] = None, name
    t, sched = raw["train"], raw["schedule"]
    full = t["steps"] if t["steps"] else (t["epochs"] * per_epoch if per_epoch else None)
    if full is None and sched["warmup_steps"] >= steps:
        raise SpecError(f"schedule.warmup_steps ({sched['warmup_steps']}) is not below the {steps} steps of "
                        f"trial {name}, and the spec counts train.epochs ({t['epochs']}), so the warm-up "
                        "cannot be scaled to the stage; lower schedule.warmup_steps or lengthen the stage")
    ratio = steps / full if full else 1.0
    sched["warmup_steps"] = min(int(sched["warmup_steps"] * ratio), steps - 1)
    if all(m >= 1 for m in sched["milestones"]):  # step numbers shrink with the run; fractions need not
        sched["milestones"] = sorted({m for m in (max(1, round(m * ratio)) for m in sched["milestones"])
                                      if m + sched["warmup_steps"] < steps})
    if sched["name"] == "step" and not sched["milestones"]:
        sched["name"] = "constant"
    t.update(steps=steps, epochs=None, eval_every=steps, checkpoint_every=steps,
             log_every=trial_log_every(t["log_every"], steps))
    # A trial is a short budget that ranks settings, not a finished model: the babysitting
    # checklist was the base spec's to run once (per trial it costs time, and a failed check would
    # fail the trial), a snapshot ensemble needs whole cosine_restarts cycles the stage cannot
    # hold, and an EMA (default decay 0.999: an average over about 1,000 steps) would still lean on the
    # first steps' weights. best.yaml keeps all three as the base spec has them. Nor a report per
    # trial: the search's report writes those of its best trials.
    t.update(preflight=False, snapshots=False, ema=None, report=False)
    raw["watch"]["enabled"] = TRIAL_WATCH
    return spec_from_dict(set_values(raw, values, name), f"trial {name} {values}")


def suggest(trial: optuna.Trial, name: str, p: ParamSpec, first: Optional[ParamSpec] = None):
    """The trial's value of `name` in this stage's range `p`. A choice is always drawn from the
    first stage's list (`first`): Optuna refuses a study whose categorical choices change
    ("does not support dynamic value space"), so a later stage's narrowed choices reach the trial
    as fixed values the driver enqueues (driver._top_up)."""
    if p.type == "categorical":
        return trial.suggest_categorical(name, (first or p).choices)
    if p.type in INT_TYPES:
        return trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_float(name, p.low, p.high, log=p.log)


def stage_space(study: optuna.Study, stage: int, attrs: Optional[dict] = None) -> dict[str, ParamSpec]:
    """Stage `stage`'s stored space; `attrs`: the study's user_attrs when already read."""
    attrs = study.user_attrs if attrs is None else attrs
    return {k: ParamSpec.model_validate(v) for k, v in attrs[f"stage{stage}"]["space"].items()}


class ReportToTrial(Callback):
    """Reports to the trial the loss of the first step (the "original cost" of LECTURES.md §2.8)
    and the training loss of every log window after it, and stops the run when the pruner says
    so (the divergence rule needs the earliest signal, so train loss, not val)."""

    def __init__(self, trial: optuna.Trial):
        self.trial, self.steps = trial, 0

    def on_step_end(self, trainer, step: int, loss) -> None:
        if step == 1:  # one host sync in the whole run; later steps cost a comparison
            self._report(float(loss), 0)

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        self.steps = step
        self._report(scalars["train_loss"], step)

    def _report(self, value: float, step: int) -> None:
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"loss {value:.4g} at step {step}")


class Worker:
    """Claims queued trials and trains them. Data are loaded once per data section and reused."""

    def __init__(self, study: optuna.Study, base: Spec, out: Path):
        self.study, self.base, self.out = study, base, Path(out)
        self.stage_steps = [s.steps for s in base.search.stages]
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._data: dict[str, object] = {}
        self._spaces: dict[int, dict[str, ParamSpec]] = {}

    def _dataset(self, spec: Spec):
        from babysit.data import build_data

        key = spec.data.model_dump_json()
        if key not in self._data:
            self._data = {key: build_data(spec.data)}  # keep one: a searched data field changes it
        return self._data[key]

    def _space(self, stage: int) -> dict[str, ParamSpec]:
        if stage not in self._spaces:
            self._spaces[stage] = stage_space(self.study, stage)
        return self._spaces[stage]

    def run(self, trial: optuna.Trial) -> None:
        with heartbeat(self.study._storage, trial._trial_id):
            self._run(trial)

    def _run(self, trial: optuna.Trial) -> None:
        stage = trial.user_attrs["stage"]
        report = ReportToTrial(trial)
        try:
            first = self._space(0)
            values = {name: suggest(trial, name, p, first[name]) for name, p in self._space(stage).items()}
            trial.set_user_attr("worker", self.worker_id)
            trial.set_user_attr(TRAINED_BY + self.worker_id, time.time())
            full = spec_with(self.base, values)  # batch_size and data may be searched too
            data = self._dataset(full)
            spec = trial_spec(self.base, values, self.stage_steps[stage], f"{self.base.name}-trial{trial.number}",
                              steps_per_epoch(full, data))
            # no checklist: a trial ranks settings; the checklist was the base spec's to run once
            summary = build_trainer(spec, self.out / TRIALS_DIR / f"{trial.number:04d}", callbacks=[report],
                                    progress=False, data=data, checks=()).fit()
        except optuna.TrialPruned as why:
            _set_attr(trial, "steps", report.steps)
            _set_attr(trial, "pruned", str(why))
            tell(self.study, trial, state=TrialState.PRUNED)
            return
        except Exception as exc:  # the trial's own fault (a bad spec, a TrainingError): failed, not retried
            why = f"{type(exc).__name__}: {exc}"
            log.warning("trial %d failed: %s", trial.number, why)
            _set_attr(trial, "steps", report.steps)
            _set_attr(trial, FAILED, why)
            tell(self.study, trial, state=TrialState.FAIL)
            return
        except BaseException:  # Ctrl-C or a kill: failed now, queued again with the same values
            frozen = tell(self.study, trial, state=TrialState.FAIL)
            retry = self.study._storage.get_heartbeat_stale_trial_callback()
            if retry is not None and frozen is not None:
                retry(self.study, frozen)
            raise
        _set_attr(trial, "steps", summary["steps"])
        if summary["val_loss"] is None or not math.isfinite(summary["val_loss"]):  # None: a failed run kept nothing
            _set_attr(trial, "pruned", f"non-finite val loss {summary['val_loss']}")
            tell(self.study, trial, state=TrialState.PRUNED)
        else:
            tell(self.study, trial, summary["val_loss"])

    def work(self, *, until_idle: bool, coordinator: bool, parent: Optional[int] = None) -> None:
        """Run queued trials. until_idle: return when nothing is queued or running (one process
        does everything); otherwise wait for more until the search is marked finished."""
        while True:
            if coordinator:
                fail_killed_trials(self.study)
            trial = claim(self.study)
            if trial is not None:
                self.run(trial)
                continue
            if parent is not None and os.getppid() != parent:
                return  # the search process is gone
            if until_idle and not self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return
            if not until_idle and self.study.user_attrs.get("finished"):
                return
            time.sleep(POLL_S)


def sampler_seed(seed: int, worker: int, existing_trials: int) -> int:
    """A fresh seed for each (spec seed, worker, resume point): a resumed or parallel worker must
    not replay another's random draws, yet an uninterrupted search is reproducible."""
    return int(np.random.SeedSequence([seed, worker, existing_trials]).generate_state(1)[0])
