"""The Optuna study behind a search: its storage (SQLite in the search folder, or any database
URL shared by workers on several machines), heartbeats, and claiming queued trials.

A search enqueues exactly the trials each stage needs; workers claim queued trials one at a time
(the storage moves WAITING -> RUNNING atomically, so no trial runs twice) and never create any.
A killed worker stops its heartbeat: after the grace period its trial is marked FAIL and a copy
with the same parameters is queued (Optuna's fail_stale_trials + RetryHeartbeatStaleTrialCallback).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

DB_FILE = "search.db"
# A trial whose process dies this many times in a row is left failed (a crash, not bad luck).
MAX_RETRY = 3
# SQLite lets one writer in at a time; workers wait this long for the lock instead of failing.
SQLITE_TIMEOUT_S = 60
# Workers started together on a new database race to create its tables; the loser tries again.
OPEN_ATTEMPTS = 3

optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage_url(out: Path, url: str | None = None) -> str:
    return url or f"sqlite:///{Path(out).resolve() / DB_FILE}"


def _sqlite_connect(path: str):
    """SQLite in write-ahead-log mode: a commit no longer waits for an fsync (measured 12.7 ms per
    commit here, and Optuna commits at every loss report), yet a killed process loses nothing
    committed; readers and the writer no longer block each other across worker processes."""
    def connect():
        conn = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    return connect


def open_storage(url: str, heartbeat_s: int) -> RDBStorage:
    engine_kwargs = None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        engine_kwargs = {"creator": _sqlite_connect(url.removeprefix("sqlite:///"))}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s,
                                  grace_period=2 * heartbeat_s,  # Optuna's default grace: two missed beats
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
        except sqlalchemy.exc.SQLAlchemyError:  # e.g. two processes creating a new database's tables
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(1.0)


def open_study(storage: RDBStorage, name: str, sampler=None, pruner=None) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                               pruner=pruner, load_if_exists=True)


def fail_killed_trials(study: optuna.Study) -> None:
    """RUNNING trials whose heartbeat stopped -> FAIL, each re-queued with the same parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)


def claim(study: optuna.Study) -> optuna.Trial | None:
    """Take one queued trial, or None when the queue is empty. Never creates a trial, so the
    number of trials is exactly what the search enqueued."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                # Beat at once: Optuna never takes a RUNNING trial without a heartbeat as stale.
                study._storage.record_heartbeat(t._trial_id)
                return optuna.Trial(study, t._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker claimed and finished it meanwhile
    return None


@contextlib.contextmanager
def heartbeat(storage: RDBStorage, trial_id: int):
    """Beat for `trial_id` while the block runs (what Study.optimize does for its own trials)."""
    stop = threading.Event()
    interval = storage.get_heartbeat_interval()

    def beat():
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trials_of_stage(study: optuna.Study, stage: int, states=None) -> list:
    return [t for t in study.get_trials(deepcopy=False, states=states) if t.user_attrs.get("stage") == stage]
