"""Real searches on a tiny names net: outputs, resuming after SIGKILL, two workers sharing trials."""
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

from babysit.search.driver import run_search
from babysit.search.study import open_storage, storage_url
from babysit.spec import load_spec

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
    workers = Counter(t.user_attrs["worker"] for t in ts)
    assert len(workers) == 2 and min(workers.values()) >= 1, workers
    assert str(os.getpid()) not in " ".join(workers)  # trained in the worker processes, not here
    assert result.best is not None


def test_a_trial_that_raises_is_failed_and_rerun_with_its_values(tmp_path, monkeypatch):
    import babysit.search.runner as runner

    spec = load_spec(write_spec(tmp_path, [{"trials": 3, "steps": 30}]))
    real = runner.Trainer

    class Interrupted(real):
        def fit(self):
            raise KeyboardInterrupt  # as if Ctrl-C hit the first trial

    monkeypatch.setattr(runner, "Trainer", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, tmp_path / "s", echo=lambda m: None)
    monkeypatch.setattr(runner, "Trainer", real)
    result = run_search(spec, tmp_path / "s", echo=lambda m: None)
    states = Counter(r.state for r in result.rows)
    assert states["FAIL"] == 1 and states["COMPLETE"] + states["PRUNED"] == 3 and len(result.rows) == 4
    failed = next(r for r in result.rows if r.state == "FAIL")
    assert sum(r.params == failed.params for r in result.rows if r.state != "FAIL") == 1
