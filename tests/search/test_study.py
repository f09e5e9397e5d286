"""The study's storage: claiming a queued trial is atomic across processes on SQLite, and a
worker whose trial was finished elsewhere goes on instead of crashing."""
import logging
import threading

from optuna.storages._rdb import models
from optuna.trial import TrialState

from babysit.search import runner
import pytest

from babysit.search.study import StorageError, claim, mask_url, open_storage, open_study, storage_url

# How long the first claimer waits for the second to read the trial too; with the fix the second
# cannot read until the first commits, so the wait runs out (the test's duration).
RENDEZVOUS_S = 1.0


def test_two_processes_racing_for_one_queued_trial_claim_it_once(tmp_path, monkeypatch):
    """Two storages (two engines, as in two worker processes) each read the trial WAITING before
    either writes RUNNING: the interleaving that gave 7-11 double claims in 300 on SQLite."""
    url = storage_url(tmp_path)
    first = open_study(open_storage(url, 60), "race")
    second = open_study(open_storage(url, 60), "race")
    first.enqueue_trial({"x": 1.0})
    both_read = threading.Barrier(2)
    real = models.TrialModel.find_or_raise_by_id.__func__

    def find_then_wait(cls, trial_id, session, for_update=False):
        trial = real(cls, trial_id, session, for_update=for_update)
        if for_update:  # Optuna's claim: read the state "FOR UPDATE", then write RUNNING
            try:
                both_read.wait(timeout=RENDEZVOUS_S)
            except threading.BrokenBarrierError:
                pass  # the other claimer never got to read: it waits for our commit
        return trial

    monkeypatch.setattr(models.TrialModel, "find_or_raise_by_id", classmethod(find_then_wait))
    got = {}
    threads = [threading.Thread(target=lambda s=s, k=k: got.__setitem__(k, claim(s)))
               for k, s in (("first", first), ("second", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    claimed = [k for k, trial in got.items() if trial is not None]
    assert len(got) == 2 and len(claimed) == 1, f"claimed by {claimed}"
    (trial,) = first.get_trials(deepcopy=False)
    assert trial.state == TrialState.RUNNING


def test_the_storage_still_runs_a_study_in_wal_mode(tmp_path):
    """BEGIN IMMEDIATE on every transaction: Optuna's own reads and writes still go through, and
    the database stays in write-ahead-log mode."""
    url = storage_url(tmp_path)
    study = open_study(open_storage(url, 60), "s")
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=5)
    storage = open_storage(url, 60)
    again = open_study(storage, "s")  # reopened, as on resume
    assert len(again.trials) == 5 and again.best_value == min(t.value for t in study.trials)
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _claimed_trial(tmp_path):
    study = open_study(open_storage(storage_url(tmp_path), 60), "s")
    study.enqueue_trial({"x": 0.5})
    return study, claim(study)


def test_telling_a_trial_finished_elsewhere_is_logged_not_raised(tmp_path, caplog):
    study, trial = _claimed_trial(tmp_path)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # as fail_stale_trials does
    with caplog.at_level(logging.WARNING, logger=runner.__name__):
        assert runner.tell(study, trial, 1.0) is None
    assert "result not recorded" in caplog.text and f"trial {trial.number}" in caplog.text
    assert study.trials[0].state == TrialState.FAIL  # left as the other process set it
    assert runner.tell(study, trial, state=TrialState.PRUNED) is None


def test_a_storage_urls_password_is_masked_and_a_bad_url_is_one_clear_error():
    assert mask_url("postgresql://user:s3cret@db:5432/search") == "postgresql://user:***@db:5432/search"
    assert mask_url("postgresql://user@db/search") == "postgresql://user@db/search"  # libpq finds it
    assert mask_url("sqlite:////tmp/x/search.db") == "sqlite:////tmp/x/search.db"
    with pytest.raises(StorageError, match=r"not a database URL SQLAlchemy accepts") as err:
        open_storage("nosuchdb://user:s3cret@db/search", 1)
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)
