"""The Optuna study behind a search: its storage (SQLite in the search folder, or any database
URL shared by workers on several machines), heartbeats, and claiming queued trials.

A search enqueues exactly the trials each stage needs; workers claim queued trials one at a time
(the storage moves WAITING -> RUNNING atomically, so no trial runs twice) and never create any.
On SQLite that atomicity is ours to provide: Optuna's SELECT ... FOR UPDATE means nothing there,
so every transaction starts with BEGIN IMMEDIATE (the write lock), and claims serialize.
A killed worker stops its heartbeat: after the grace period its trial is marked FAIL and a copy
with the same parameters is queued (Optuna's fail_stale_trials + RetryHeartbeatStaleTrialCallback).

A server database's URL may carry a password: it is shown masked wherever babysit prints or
records the URL (mask_url), and need not be given at all: the URL may come from OPTUNA_STORAGE,
as Optuna's own CLI reads it, and a PostgreSQL URL without a password lets libpq find it in
PGPASSWORD or the password file (~/.pgpass, or PGPASSFILE).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from babysit.errors import TrainingError

DB_FILE = "search.db"
# A trial whose process dies this many times in a row is left failed (a crash, not bad luck).
MAX_RETRY = 3
# SQLite lets one writer in at a time; workers wait this long for the lock instead of failing.
SQLITE_TIMEOUT_S = 60
# Workers started together on a new database race to create its tables; the loser tries again.
OPEN_ATTEMPTS = 3
# User attribute holding why a trial failed by its own fault (an invalid spec, a TrainingError):
# such a trial is settled (never queued again); a FAIL without it was interrupted and re-queued.
FAILED = "failed"
# User attribute prefix, one key per worker that trained the trial (the value: when it started).
# Distinct keys, so a trial trained by two workers shows both; a shared key would keep the last.
TRAINED_BY = "trained_by:"
# A server that does not answer within this many seconds is reported unreachable (libpq's default
# is to wait forever on an address that drops packets).
CONNECT_TIMEOUT_S = 10

optuna.logging.set_verbosity(optuna.logging.WARNING)


class StorageError(TrainingError):
    """A storage that cannot be opened: a wrong password, a server that does not answer, a
    missing database driver. The message names the URL with its password masked."""


def storage_url(out: Path, url: str | None = None) -> str:
    return url or f"sqlite:///{Path(out).resolve() / DB_FILE}"


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None


def mask_url(url: str) -> str:
    """The URL with its password as ***, for everything babysit prints or records."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return "<storage URL that SQLAlchemy cannot parse>"


def _scrub(text: str, url: str) -> str:
    """`text` (a driver's message) on one line, with the URL's password masked should it echo it."""
    password = _password(url)
    line = " ".join(str(text).split())
    return line.replace(password, "***") if password else line


def _sqlite_connect(path: str):
    """SQLite in write-ahead-log mode: a commit no longer waits for an fsync (measured 12.7 ms per
    commit here, and Optuna commits at every loss report), yet a killed process loses nothing
    committed; readers and the writer no longer block each other across worker processes.

    isolation_level=None stops the pysqlite driver from opening transactions itself (it would
    open a deferred one, lazily, at the first write); `_begin_immediate` opens them instead."""
    def connect():
        conn = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    return connect


def _begin_immediate(conn) -> None:
    """Every transaction takes SQLite's write lock at its start. Optuna claims a trial by reading
    it WAITING and writing RUNNING in one transaction, trusting SELECT ... FOR UPDATE to lock the
    row; SQLite ignores FOR UPDATE, so with deferred transactions two processes both read WAITING
    and both set RUNNING (7-11 duplicate claims in 300, two processes). Under BEGIN IMMEDIATE the
    second waits (up to SQLITE_TIMEOUT_S) until the first commits, then reads RUNNING."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_storage(url: str, heartbeat_s: int) -> RDBStorage:
    """Optuna's RDBStorage on `url`. Cannot connect (wrong password, no server, no driver):
    a StorageError, one line, the password masked."""
    engine_kwargs = None
    sqlite_file = url.startswith("sqlite:///") and url != "sqlite:///:memory:"
    if sqlite_file:
        engine_kwargs = {"creator": _sqlite_connect(url.removeprefix("sqlite:///"))}
    elif url.startswith("postgresql"):
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s,
                                     grace_period=2 * heartbeat_s,  # Optuna's default grace: two missed beats
                                     heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
            break
        except ImportError as exc:  # the URL's database driver (psycopg for postgresql://) is not installed
            raise StorageError(f"cannot open the search storage {mask_url(url)}: its database driver is not "
                               f"installed ({exc.name or exc}); for PostgreSQL: pip install 'babysit[postgres]'") from None
        except (sqlalchemy.exc.ArgumentError, ValueError) as exc:  # not a URL SQLAlchemy knows
            raise StorageError(f"--storage {mask_url(url)} is not a database URL SQLAlchemy accepts "
                               f"({_scrub(exc, url)}); e.g. postgresql://user@host:5432/db") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:  # e.g. two processes creating a new database's tables
            if attempt == OPEN_ATTEMPTS - 1 or _refused(exc):
                raise StorageError(f"cannot open the search storage {mask_url(url)}: "
                                   f"{_scrub(getattr(exc, 'orig', None) or exc, url)}") from None
            time.sleep(1.0)
    if sqlite_file:
        # Only now: while the storage sets itself up, Optuna reads on a second connection while
        # the first still has a transaction open, which an immediate lock would deadlock.
        sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
    return storage


def _refused(exc: Exception) -> bool:
    """A connection the server refused or never answered: trying again will not help."""
    return isinstance(exc, sqlalchemy.exc.OperationalError) and not isinstance(exc.orig, sqlite3.Error)


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
    number of trials is exactly what the search enqueued. Atomic across processes: on SQLite
    through `_begin_immediate`, on a server database through Optuna's row lock."""
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


def settled(t) -> bool:
    """Counts toward its stage: queued, running, finished, or failed by its own fault."""
    return t.state != TrialState.FAIL or FAILED in t.user_attrs


def trials_of_stage(study: optuna.Study, stage: int, states=None) -> list:
    return [t for t in study.get_trials(deepcopy=False, states=states) if t.user_attrs.get("stage") == stage]
