"""A search from start to finish: open (or resume) the study, run the stages one after the other
(each stage's space narrowed from the last), with the trials in this process or in worker
processes, then write the table, best.yaml and the plots."""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import socket
import time
import zlib
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import optuna
from optuna.samplers import RandomSampler, TPESampler
from optuna.trial import TrialState

from babysit.errors import TrainingError
from babysit.layout import atomic_write_text
from babysit.report.callback import write_end_report
from babysit.search.pruner import build_pruner
from babysit.search.runner import POLL_S, Worker, sampler_seed, spec_with, stage_space, trial_log_every
from babysit.search.stages import narrow
from babysit.search.study import (fail_killed_trials, mask_url, open_storage, open_study, settled, storage_url,
                                  trials_of_stage)
from babysit.spec import INT_TYPES, SearchSpec, Spec, SpecError, dump_spec, spec_from_dict

SAMPLERS = {"random": lambda seed: RandomSampler(seed=seed),
            "grid": lambda seed: RandomSampler(seed=seed),  # grid points are enqueued with fixed values
            "tpe": lambda seed: TPESampler(seed=seed)}


class SearchError(TrainingError):
    """A search that cannot go on (trials failed, workers died); rerunning resumes it. A
    TrainingError, so the CLI reports it like any user error."""


def stage_size(study, stage: int, search: SearchSpec) -> int:
    """The trials stage `stage` needs; for a grid, the points of its own (narrowed) space."""
    return search.stage_trials(stage, stage_space(study, stage))


def resolve_search(spec: Spec, trials: Optional[int] = None, sampler: Optional[str] = None) -> SearchSpec:
    """The spec's search section with the command line's --sampler and --trials applied."""
    if spec.search is None:
        raise SpecError(f"spec '{spec.name}' has no search: section; add one, e.g.\n"
                        "search:\n  params:\n    optim.lr: {type: log_uniform, low: 1.0e-3, high: 1}\n"
                        "  stages: [{trials: 16, steps: 1000}, {trials: 8, steps: 4000}]")
    search = spec.search
    if sampler is not None and sampler != search.sampler:
        raw = search.model_dump()
        raw["sampler"] = sampler
        if sampler == "grid":
            raw["stages"] = [{"steps": s["steps"]} for s in raw["stages"]]
        try:
            search = SearchSpec.model_validate(raw)
        except Exception as exc:
            raise SpecError(f"--sampler {sampler}: {exc}") from None
    return search.with_total_trials(trials) if trials is not None else search


def check_space(base: Spec, space: dict) -> None:
    """Every end of every range (and every choice) must give a valid spec: a typo in a path or an
    impossible bound fails now, not in trial 17."""
    for name, p in space.items():
        for v in (p.choices if p.type == "categorical" else [p.low, p.high]):
            v = int(v) if p.type in INT_TYPES else v
            try:
                spec_with(base, {name: v})
            except SpecError as exc:
                raise SpecError(f"search.params.{name}: the value {v!r} gives an invalid spec:\n{exc}") from None


def _valid(base: Spec) -> Callable[[str, float], bool]:
    def valid(name, value):
        try:
            spec_with(base, {name: value})
            return True
        except SpecError:
            return False
    return valid


def _identity(base: Spec, search: SearchSpec) -> str:
    raw = base.model_dump(mode="json")
    raw["search"] = None
    return json.dumps({"spec": raw, "params": search.model_dump(mode="json")["params"],
                       "sampler": search.sampler, "steps": [s.steps for s in search.stages]}, sort_keys=True)


def _plan_stage(study, stage: int, base: Spec, search: SearchSpec, echo) -> None:
    """Store stage `stage`'s space in the study, once: a resumed search reuses it unchanged."""
    key = f"stage{stage}"
    if key in study.user_attrs:
        return
    if stage == 0:
        plan = {"space": {k: v.model_dump() for k, v in search.params.items()}, "notes": []}
    else:
        done = trials_of_stage(study, stage - 1, states=(TrialState.COMPLETE,))
        narrowed = narrow(stage_space(study, stage - 1), [(t.params, t.value) for t in done],
                          search.keep, _valid(base), min_keep=search.promote)
        plan = {"space": {k: v.model_dump() for k, v in narrowed.space.items()}, "notes": narrowed.notes}
    study.set_user_attr(key, plan)
    for note in plan["notes"]:
        echo(f"  {note}")


def _describe_space(space: dict) -> str:
    parts = []
    for k, p in space.items():
        parts.append(f"{k} in {p.choices}" if p.type == "categorical"
                     else f"{k} in [{p.low:.3g}, {p.high:.3g}]{' (log)' if p.log else ''}")
    return ", ".join(parts)


def _top_up(study, stage: int, search: SearchSpec, base_seed: int) -> int:
    """Queue what stage `stage` still lacks; returns how many were queued. Killed trials were
    failed and re-queued by fail_killed_trials, so they count as alive here, never twice; a
    trial that failed by its own fault counts as done, so resuming does not repeat it."""
    fail_killed_trials(study)
    alive = [t for t in trials_of_stage(study, stage) if settled(t)]
    space = stage_space(study, stage)
    if search.sampler == "grid":
        names = list(space)
        seen = {tuple((t.system_attrs.get("fixed_params") or t.params).get(n) for n in names) for t in alive}
        points = [p for p in itertools.product(*(space[n].grid(search.grid_points) for n in names))
                  if p not in seen]
        for point in points:
            study.enqueue_trial(dict(zip(names, point)), user_attrs={"stage": stage})
        return len(points)
    queued = 0
    if stage > 0 and search.promote:  # the last stage's best, re-trained at this stage's budget
        done = sorted(trials_of_stage(study, stage - 1, states=(TrialState.COMPLETE,)), key=lambda t: t.value)
        have = {t.user_attrs.get("promoted_from") for t in alive}
        for t in done[:min(search.promote, stage_size(study, stage, search))]:
            if t.number not in have:
                study.enqueue_trial(t.params, user_attrs={"stage": stage, "promoted_from": t.number})
                queued += 1
    missing = max(stage_size(study, stage, search) - len(alive) - queued, 0)
    first = stage_space(study, 0)
    narrowed = {n: p.choices for n, p in space.items() if p.type == "categorical" and p.choices != first[n].choices}
    for i in range(len(alive) + queued, len(alive) + queued + missing):
        if search.sampler == "random":
            # every value drawn now, from (seed, stage, trial): a search resumed after a kill runs
            # the very trials it had planned, and narrows the next stage the same way
            rng = np.random.default_rng([base_seed, stage, i])
            values = {n: p.sample(rng) for n, p in space.items()}
        else:  # tpe draws at run time from what it has seen; narrowed choices are fixed, in turn
            values = {n: c[i % len(c)] for n, c in narrowed.items()}
        study.enqueue_trial(values, user_attrs={"stage": stage})
    return queued + missing


def _worker_main(spec_json: str, out: str, url: str, study_name: str, index: int) -> None:
    """Entry point of a worker process (started with multiprocessing's spawn)."""
    import torch

    torch.set_num_threads(1)
    base = spec_from_dict(json.loads(spec_json), "search worker")
    study = _open(base, url, study_name, index)
    Worker(study, base, Path(out)).work(
        until_idle=False, coordinator=False, parent=os.getppid())


def _open(base: Spec, url: str, name: str, worker: int) -> optuna.Study:
    """The study (created if new), its sampler seeded by the worker and the trials on record."""
    search = base.search
    log_every = trial_log_every(base.train.log_every, min(s.steps for s in search.stages))  # the shortest trials'
    study = open_study(open_storage(url, search.heartbeat_s), name,
                       pruner=build_pruner(search.pruner, search.divergence_factor, log_every))
    n = len(study.get_trials(deepcopy=False))
    study.sampler = SAMPLERS[search.sampler](sampler_seed(base.seed, worker, n))
    return study


def run_search(spec: Spec, out: Path | str, *, trials: Optional[int] = None, workers: int = 1,
               storage: Optional[str] = None, sampler: Optional[str] = None, join: bool = False,
               echo: Callable[[str], None] = print):
    """Run (or resume, or join) the search of `spec` in folder `out`; returns the SearchResult."""
    from babysit.search.report import collect, write_outputs

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    search = resolve_search(spec, trials, sampler)
    base = spec.model_copy(update={"search": search})
    check_space(base, search.params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    url = storage_url(out, storage)
    name = search.study or spec.name
    # A joining process numbers its workers from its own (host, pid): numbered 0, 1, ... like the
    # driver's, they would seed their samplers alike and draw the driver's workers' values.
    first = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) << 8 if join else 0
    study = _open(base, url, name, worker=first)
    ident = _identity(base, search)
    if study.user_attrs.get("identity", ident) != ident:
        raise SpecError(f"the study '{name}' in {mask_url(url)} belongs to a different spec or search space; "
                        "use another --out (or --storage / search.study) for this one")
    if join:
        echo(f"joining study '{name}' at {mask_url(url)} with {workers} worker(s); trial folders in {out / 'trials'}")
        if workers == 1:
            Worker(study, base, out).work(until_idle=False, coordinator=False)
        for p in _start_workers(base, out, url, name, workers, first) if workers > 1 else []:
            p.join()
        return collect(study, base, out)
    study.set_user_attr("identity", ident)
    study.set_user_attr("finished", False)
    atomic_write_text(out / "search.yaml", dump_spec(base))
    resumed = study.get_trials(deepcopy=False)
    echo(f"search '{name}': {mask_url(url)}" + (f" (resuming: {len(resumed)} trials on record)" if resumed else ""))
    left = [t.number for t in resumed if t.state == TrialState.RUNNING]
    if left:  # their process may be gone; a trial is taken as killed once its heartbeat lapses
        echo(f"  trials {left} were left running: waiting up to {2 * search.heartbeat_s} s for their heartbeat "
             "to lapse (a killed process's trials are then run again with the same values)")
    procs = _start_workers(base, out, url, name, workers) if workers > 1 else []
    # one in-process worker for every stage: it keeps the data it loaded and the spaces it read
    worker = Worker(study, base, out) if not procs else None
    try:
        for s, stage in enumerate(search.stages):
            _plan_stage(study, s, base, search, echo)
            queued = _top_up(study, s, search, base.seed)
            size = stage_size(study, s, search)
            echo(f"stage {s + 1}/{len(search.stages)}: {size} trials x {stage.steps} steps "
                 f"({queued} queued now); {_describe_space(stage_space(study, s))}")
            if worker is not None:
                worker.work(until_idle=True, coordinator=True)
            else:
                _wait_stage(study, s, procs)
            done = [t for t in trials_of_stage(study, s) if t.state.is_finished() and settled(t)]
            failed = sum(t.state == TrialState.FAIL for t in done)
            if failed:
                echo(f"  {failed} trial(s) of stage {s + 1} failed; their reasons are in the table")
            if len(done) < size:
                raise SearchError(f"stage {s + 1} ended with {len(done)} of {size} trials finished; "
                                  "see the failed trials in the table and rerun to resume")
        study.set_user_attr("finished", True)
    finally:
        for p in procs:
            p.join(timeout=10 * POLL_S)
            if p.is_alive():
                p.terminate()
    result = collect(study, base, out)
    write_outputs(result, out)
    write_end_report(base, out)  # trials write none: the search's page writes its best trials' reports
    return result


def _start_workers(base: Spec, out: Path, url: str, name: str, workers: int, first: int = 0) -> list:
    ctx = mp.get_context("spawn")  # a clean interpreter: no inherited torch threads or DB handles
    spec_json = json.dumps(base.model_dump(mode="json"))
    procs = [ctx.Process(target=_worker_main, args=(spec_json, str(out), url, name, first + i + 1), daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    return procs


def _wait_stage(study, stage: int, procs: list) -> None:
    """Poll until stage `stage` has nothing queued or running; fail trials of killed workers."""
    while True:
        fail_killed_trials(study)
        pending = trials_of_stage(study, stage, states=(TrialState.WAITING, TrialState.RUNNING))
        if not pending:
            return
        if not any(p.is_alive() for p in procs):
            codes = [p.exitcode for p in procs]
            raise SearchError(f"all {len(procs)} search workers exited (exit codes {codes}) with "
                               f"{len(pending)} trials of stage {stage + 1} pending; rerun to resume")
        time.sleep(POLL_S)
