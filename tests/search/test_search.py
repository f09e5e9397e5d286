"""Real searches on a tiny names net: outputs, resuming after SIGKILL, two workers sharing trials,
trials that fail on their own, narrowed choices, and a trial's spec at its stage's budget."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from babysit.search import runner
from babysit.search.driver import run_search
from babysit.search.report import trials_table
from babysit.search.study import FAILED, TRAINED_BY, open_storage, open_study, storage_url
from babysit.spec import SpecError, load_spec

SRC = str(Path(__file__).resolve().parents[2] / "src")


def write_spec(tmp_path, stages, steps=400, heartbeat_s=1, **search):
    spec = {
        "name": "tiny", "seed": 3,
        "data": {"kind": "names", "context": 3},
        "model": {"kind": "mlp", "embed_dim": 4, "hidden": [16], "batchnorm": True},
        "optim": {"name": "sgd", "lr": 0.1},
        "schedule": {"name": "step", "milestones": [steps // 2]},
        "train": {"steps": steps, "log_every": 20, "eval_every": 100},
        "watch": {"enabled": False},
        "search": {"params": {"optim.lr": {"type": "log_uniform", "low": 1e-3, "high": 30.0},
                              "optim.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-1}},
                   "stages": stages, "heartbeat_s": heartbeat_s, **search},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def trials(out, name="tiny"):
    storage = open_storage(storage_url(out), 1)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_a_two_stage_search_writes_a_winner_that_trains(tmp_path):
    spec = load_spec(write_spec(tmp_path, [{"trials": 4, "steps": 40}, {"trials": 2, "steps": 120}]))
    out = tmp_path / "s"
    result = run_search(spec, out, echo=lambda m: None)
    by_stage = Counter((r.stage, r.state) for r in result.rows)
    assert by_stage[(0, "COMPLETE")] + by_stage[(0, "PRUNED")] == 4
    assert by_stage[(1, "COMPLETE")] + by_stage[(1, "PRUNED")] == 2 and len(result.rows) == 6
    last = [r for r in result.rows if r.stage == 1 and r.state == "COMPLETE"]
    assert result.best.value == min(r.value for r in last)
    # stage 2 sampled inside its narrowed range, which lies inside the wide one unless widened
    s2 = result.spaces[1]["optim.lr"]
    assert all(s2.low <= r.params["optim.lr"] <= s2.high for r in result.rows if r.stage == 1)
    assert result.compute_steps == sum(r.steps for r in result.rows)
    # the coarse stage's best two are re-trained at the longer budget (search.promote: 2)
    coarse = sorted((r for r in result.rows if r.stage == 0 and r.state == "COMPLETE"), key=lambda r: r.value)
    assert [r.params for r in coarse[:2]] == [r.params for r in result.rows if r.stage == 1]
    assert all(r.steps == 120 for r in last) and all(r.steps <= 40 for r in result.rows if r.stage == 0)
    best = load_spec(out / "best.yaml")  # a complete spec that `babysit train` takes
    assert best.optim.lr == result.best.params["optim.lr"] and best.search is None
    assert best.optim.weight_decay == result.best.params["optim.weight_decay"]
    assert best.train.steps == 400 and best.schedule.milestones == [200]  # the full budget, as searched
    assert {p.name for p in (out / "plots").iterdir()} == {"optim_lr.png", "optim_weight_decay.png"}
    # run again: the finished search is read back, nothing re-runs
    again = run_search(spec, out, echo=lambda m: None)
    assert len(again.rows) == 6 and again.best.number == result.best.number


def test_a_diverging_trial_is_pruned_within_a_few_reports(tmp_path):
    spec = load_spec(write_spec(tmp_path, [{"trials": 1, "steps": 200}],
                                params={"optim.lr": {"type": "log_uniform", "low": 10, "high": 100}}),
                     ["model.batchnorm=false"])  # without BatchNorm an lr of 10+ blows up at once
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    (row,) = result.rows
    assert row.state == "PRUNED" and row.steps == 10  # at the first log window (200 steps / 20 reports)
    assert result.compute_steps == 10 and "loss" in row.note


def _cli(out, spec_path, *extra):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "babysit.cli", "search", str(spec_path), "--out", str(out), *extra], env


def test_a_search_killed_mid_trial_resumes_and_counts_every_trial_once(tmp_path):
    spec_path = write_spec(tmp_path, [{"trials": 6, "steps": 150}])
    out = tmp_path / "s"
    cmd, env = _cli(out, spec_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_trial = None
    deadline = time.time() + 60
    while killed_trial is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if not (out / "trials").exists():  # the study exists once the first trial trains
            continue
        ts = trials(out)
        running = [t for t in ts if t.state == TrialState.RUNNING and t.params]  # values drawn, training
        if running and any(t.state == TrialState.COMPLETE for t in ts):
            os.kill(proc.pid, signal.SIGKILL)
            killed_trial = running[0].number
    proc.wait()
    assert killed_trial is not None, f"never saw a running trial: {proc.stderr.read().decode()[-2000:]}"
    before = trials(out)
    assert any(t.state == TrialState.RUNNING for t in before)  # left running by the killed process

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    after = trials(out)
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in after if t.state == TrialState.FAIL]
    assert len(finished) == 6  # exactly the trials asked for
    assert [t.number for t in failed] == [killed_trial]  # the interrupted one, marked failed ...
    killed = failed[0]
    redone = [t for t in finished if t.system_attrs.get("failed_trial") == killed_trial]
    assert len(redone) == 1 and redone[0].params == killed.params  # ... and re-run once, same values
    assert sum(t.params == killed.params for t in finished) == 1
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 6  # no parameters run twice
    assert not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in after)
    # trials finished before the kill were kept, not re-run
    kept = [t for t in before if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert kept and all(after[t.number].state == t.state and after[t.number].value == t.value for t in kept)
    assert "resuming" in done.stdout and (out / "best.yaml").is_file()


def test_two_workers_share_one_storage_without_duplicating_a_trial(tmp_path):
    spec = load_spec(write_spec(tmp_path, [{"trials": 8, "steps": 300}],
                                params={"optim.lr": {"type": "log_uniform", "low": 1e-2, "high": 0.3},
                                        "optim.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-3}}))
    result = run_search(spec, tmp_path / "s", workers=2, echo=lambda m: None)
    ts = trials(tmp_path / "s")
    assert len(ts) == 8 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ts)
    assert len({t.number for t in ts}) == 8
    assert len({tuple(sorted(t.params.items())) for t in ts}) == 8
    # each worker marks the trial it trains with its own key, so a trial trained twice shows two
    trained_by = {t.number: [k.removeprefix(TRAINED_BY) for k in t.user_attrs if k.startswith(TRAINED_BY)]
                  for t in ts}
    assert all(who == [t.user_attrs["worker"]] for t, who in zip(ts, trained_by.values())), trained_by
    assert sorted(int(p.name) for p in (tmp_path / "s" / "trials").iterdir()) == list(range(8))  # one run dir each
    workers = Counter(t.user_attrs["worker"] for t in ts)
    assert len(workers) == 2 and min(workers.values()) >= 1, workers
    assert str(os.getpid()) not in " ".join(workers)  # trained in the worker processes, not here
    assert result.best is not None


def test_a_trial_that_raises_is_failed_and_rerun_with_its_values(tmp_path, monkeypatch):
    import babysit.session as session

    spec = load_spec(write_spec(tmp_path, [{"trials": 3, "steps": 30}]))
    real = session.Trainer

    class Interrupted(real):
        def fit(self):
            raise KeyboardInterrupt  # as if Ctrl-C hit the first trial

    monkeypatch.setattr(session, "Trainer", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, tmp_path / "s", echo=lambda m: None)
    monkeypatch.setattr(session, "Trainer", real)
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    states = Counter(r.state for r in result.rows)
    assert states["FAIL"] == 1 and states["COMPLETE"] + states["PRUNED"] == 3 and len(result.rows) == 4
    failed = next(r for r in result.rows if r.state == "FAIL")
    assert sum(r.params == failed.params for r in result.rows if r.state != "FAIL") == 1


def test_trials_that_raise_are_failed_with_their_reason_and_the_search_goes_on(tmp_path):
    """A sampled value that gives a valid spec but no data (a names file that is not there)
    fails its own trials only; resuming does not run them again."""
    missing = str(tmp_path / "no-such-names.txt")
    spec = load_spec(write_spec(tmp_path, [{"steps": 30}], sampler="grid", grid_points=2,
                                params={"optim.lr": {"type": "log_uniform", "low": 0.05, "high": 0.2},
                                        "data.path": {"type": "categorical", "choices": [missing, None]}}))
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    assert len(result.rows) == 4
    failed = [r for r in result.rows if r.state == "FAIL"]
    assert sorted(r.params["optim.lr"] for r in failed) == pytest.approx([0.05, 0.2])
    assert all(r.params["data.path"] == missing for r in failed)
    assert all(r.state in ("COMPLETE", "PRUNED") for r in result.rows if r.params["data.path"] is None)
    assert all(r.note.startswith(f"failed: DataError: cannot read names file {missing}") for r in failed)
    assert result.best is not None and result.best.params["data.path"] is None
    ts = trials(tmp_path / "s")
    assert all(FAILED in t.user_attrs and not t.system_attrs.get("failed_trial") for t in ts
               if t.state == TrialState.FAIL)  # failed, not queued again
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(trials_table(result))
    shown = console.export_text()
    assert shown.count("failed: DataError: cannot read names file") == 2
    again = run_search(spec, tmp_path / "s", echo=lambda m: None)  # resume: nothing runs again
    assert len(again.rows) == 4 and len(trials(tmp_path / "s")) == 4


def test_a_grid_stage_narrowed_to_fewer_choices_runs_its_own_grid(tmp_path):
    """Stage 2 keeps the activations of stage 1's best two trials: fewer grid points than stage 1."""
    spec = load_spec(write_spec(tmp_path, [{"steps": 20}, {"steps": 40}], sampler="grid", grid_points=2,
                                params={"optim.lr": {"type": "log_uniform", "low": 0.05, "high": 0.5},
                                        "model.activation": {"type": "categorical",
                                                             "choices": ["tanh", "relu", "sigmoid"]}}))
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    first = [r for r in result.rows if r.stage == 0]
    second = [r for r in result.rows if r.stage == 1]
    assert len(first) == 6 and all(r.state in ("COMPLETE", "PRUNED") for r in result.rows)
    kept = result.spaces[1]["model.activation"].choices
    assert len(kept) < 3 and len(second) == 2 * len(kept)
    assert {(r.params["optim.lr"], r.params["model.activation"]) for r in second} == {
        (lr, a) for lr in result.spaces[1]["optim.lr"].grid(2) for a in kept}
    assert result.best is not None and result.best.stage == 1


def test_a_random_stage_draws_only_the_choices_narrowing_kept(tmp_path):
    """Optuna refuses a categorical whose choices change within a study: the later stage still
    runs, on the kept choices only."""
    spec = load_spec(write_spec(tmp_path, [{"trials": 4, "steps": 20}, {"trials": 4, "steps": 40}],
                                params={"optim.lr": {"type": "log_uniform", "low": 0.05, "high": 0.5},
                                        "model.activation": {"type": "categorical",
                                                             "choices": ["tanh", "relu", "sigmoid"]}}))
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    kept = result.spaces[1]["model.activation"].choices
    second = [r for r in result.rows if r.stage == 1]
    assert len(kept) < 3 and len(second) == 4 and all(r.state in ("COMPLETE", "PRUNED") for r in second)
    assert {r.params["model.activation"] for r in second} == set(kept)  # each kept choice drawn


def test_a_worker_whose_trial_is_failed_while_it_trains_goes_on(tmp_path, monkeypatch):
    """The coordinator took the worker for dead (a long pause) and failed its trial mid-run: the
    worker's next report and its tell meet a finished trial; it logs that and takes the next one."""
    spec = load_spec(write_spec(tmp_path, [{"trials": 2, "steps": 40}]))
    (tmp_path / "s").mkdir()
    study = open_study(open_storage(storage_url(tmp_path / "s"), 60), "tiny")
    study.set_user_attr("stage0", {"space": {k: v.model_dump() for k, v in spec.search.params.items()}})
    for _ in range(2):
        study.enqueue_trial({}, user_attrs={"stage": 0})
    import babysit.session as session

    real = session.Trainer

    class FailedElsewhere(real):
        def fit(self):
            if self.spec.name.endswith("trial0"):
                study._storage.set_trial_state_values(study.trials[0]._trial_id, TrialState.FAIL)
            return super().fit()

    monkeypatch.setattr(session, "Trainer", FailedElsewhere)
    runner.Worker(study, spec, tmp_path / "s").work(until_idle=True, coordinator=False)
    first, second = study.get_trials(deepcopy=False)
    assert first.state == TrialState.FAIL and second.state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_a_trial_scales_an_epoch_counted_warm_up_to_its_stage(tmp_path):
    from babysit.data import build_data
    from babysit.session import build_trainer

    spec = load_spec(write_spec(tmp_path, [{"trials": 1, "steps": 100}]),
                     ["train.steps=null", "train.epochs=2", "schedule.warmup_steps=2000", "schedule.milestones=[6000]"])
    data = build_data(spec.data)
    per_epoch = runner.steps_per_epoch(spec, data)
    assert 2 * per_epoch == build_trainer(spec, tmp_path / "run", progress=False, data=data).total_steps
    ts = runner.trial_spec(spec, {}, 100, "t", per_epoch)
    # the base warms up for 2000 of its 2 x 5707 steps (17.5%); the trial for as large a share of 100
    assert ts.schedule.warmup_steps == int(2000 * 100 / (2 * per_epoch)) == 17
    assert ts.schedule.milestones == [round(6000 * 100 / (2 * per_epoch))] == [53]
    assert ts.train.steps == 100 and ts.train.epochs is None
    with pytest.raises(SpecError, match=r"schedule.warmup_steps \(2000\) is not below the 100 steps of trial t"):
        runner.trial_spec(spec, {}, 100, "t")  # the length of an epoch unknown: refused, not capped


def test_a_trial_runs_no_preflight_snapshots_or_ema(tmp_path):
    spec = load_spec(write_spec(tmp_path, [{"trials": 1, "steps": 100}]),
                     ["train.preflight=true", "train.snapshots=true", "train.ema={decay: 0.99}",
                      "schedule.name=cosine_restarts", "schedule.milestones=[]", "schedule.cycle_steps=100"])
    assert spec.train.preflight and spec.train.snapshots and spec.train.ema.decay == 0.99
    ts = runner.trial_spec(spec, {"optim.lr": 0.05}, 40, "t", 5707)
    assert not ts.train.preflight and not ts.train.snapshots and ts.train.ema is None
    assert ts.optim.lr == 0.05 and ts.schedule.name == "cosine_restarts"


def test_a_random_stage_draws_its_values_when_planned_so_a_resume_runs_the_same_trials(tmp_path):
    """Values are a function of (seed, stage, trial) fixed when the stage is queued: a search
    killed before it started some trials runs exactly those values when resumed."""
    from babysit.search.driver import _plan_stage, _top_up

    spec = load_spec(write_spec(tmp_path, [{"trials": 5, "steps": 30}, {"trials": 3, "steps": 60}]))
    planned = []
    for k in range(2):
        (tmp_path / f"s{k}").mkdir()
        study = open_study(open_storage(storage_url(tmp_path / f"s{k}"), 60), "tiny")
        _plan_stage(study, 0, spec, spec.search, echo=lambda m: None)
        assert _top_up(study, 0, spec.search, spec.seed) == 5
        assert _top_up(study, 0, spec.search, spec.seed) == 0  # a resume queues nothing twice
        planned.append([t.system_attrs["fixed_params"] for t in study.get_trials(deepcopy=False)])
    assert planned[0] == planned[1] and len({tuple(sorted(p.items())) for p in planned[0]}) == 5
    space = spec.search.params
    for values in planned[0]:
        assert set(values) == set(space)
        for name, v in values.items():
            p = space[name]
            assert p.low <= v <= p.high
