"""Faults: NaN and divergence stop within a few steps and say what is kept; a full disk leaves the
last good checkpoint whole and resumable; Ctrl-C / SIGTERM checkpoint and print the resume
command; out of memory is one line. summary.json is valid JSON always."""
import errno
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from babysit import Callback, build_trainer, load_spec
from babysit.cli import main
from babysit.errors import StorageError, TrainingError
from babysit.layout import CHECKPOINT, SUMMARY
from babysit.runs import load_run
from babysit.train.evaluate import evaluate

BY = 20  # the bar: a fault at step k stops the run by step k + 20


def _strict_json(path):
    """summary.json read by a parser that refuses NaN and Infinity, as every JSON tool but Python's does."""
    def refuse(token):
        raise ValueError(f"{path} holds a bare {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


class At(Callback):
    def __init__(self, step, act):
        self.at, self.act = step, act

    def on_step_end(self, trainer, step, loss):
        if step == self.at:
            self.act(trainer)


def _poison(trainer):
    with torch.no_grad():
        trainer.model.out.weight[0, 0] = float("nan")


def _blow_up(trainer):
    for g in trainer.optimizer.param_groups:
        g["lr"] = 1e3


@pytest.mark.parametrize("fault", [_poison, _blow_up])
@pytest.mark.parametrize("doctor", [True, False])
@pytest.mark.parametrize("k, log_every", [(7, 1000), (33, 10), (151, 1000), (151, 50)])
def test_nan_or_divergence_at_step_k_stops_by_k_plus_20(tmp_path, digits_spec, fault, doctor, k, log_every):
    spec = digits_spec(f"train.log_every={log_every}", "train.eval_every=1000", "train.checkpoint_every=1000",
                       steps=400)
    summary = build_trainer(spec, tmp_path, callbacks=[At(k, fault)], doctor=doctor, progress=False).fit()
    assert summary["status"] == "failed" and k < summary["steps"] <= k + BY, summary["stopped"]
    assert "No checkpoint was written before it" in summary["stopped"]
    on_disk = _strict_json(tmp_path / SUMMARY)
    assert on_disk["kept_step"] is None and on_disk["val_loss"] is None and on_disk["diverged"]["step"] == summary["steps"]


def test_a_run_that_diverges_after_a_good_checkpoint_reports_the_kept_model(tmp_path, digits_spec):
    spec = digits_spec("train.log_every=50", "train.checkpoint_every=50", steps=400)
    summary = build_trainer(spec, tmp_path, callbacks=[At(120, _blow_up)], progress=False).fit()
    assert summary["status"] == "failed" and summary["kept_step"] == 100 and summary["steps"] <= 120 + BY
    assert f"the last good checkpoint, step 100 ({tmp_path / CHECKPOINT})" in summary["stopped"]
    kept = load_run(tmp_path)
    assert kept.step == 100
    assert summary["val_loss"] == pytest.approx(evaluate(kept.model, kept.data.val)["loss"], rel=1e-6)
    assert summary["diverged"]["val_loss"] is None or summary["diverged"]["val_loss"] > 3 * summary["val_loss"]
    _strict_json(tmp_path / SUMMARY)


def test_the_cli_exits_1_on_a_nan_run_and_writes_valid_json(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "digits-mlp", "--set", "optim.name=sgd", "--set", "optim.lr=1e6",
                                       "--set", "train.checkpoint_every=50", "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "nothing to resume from" in result.output and "Traceback" not in result.output
    assert _strict_json(out / SUMMARY)["status"] == "failed"


def test_a_full_disk_keeps_the_last_good_checkpoint_and_resume_works_once_space_is_back(tmp_path, digits_spec,
                                                                                       monkeypatch):
    import babysit.train.checkpoint as checkpoint

    spec = digits_spec("train.checkpoint_every=50", "train.log_every=25", steps=150)
    real, calls = checkpoint.torch.save, []

    def full_disk(state, fh):  # the second checkpoint hits a full disk halfway, as torch reports it
        calls.append(state["step"])
        if len(calls) == 2:
            fh.write(b"partial")
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")
        return real(state, fh)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(StorageError) as err:
        build_trainer(spec, tmp_path, progress=False).fit()
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / CHECKPOINT) in message and "disk is full" in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 50  # the last good one, whole
    monkeypatch.setattr(checkpoint.torch, "save", real)  # space is back
    resumed = build_trainer(spec, tmp_path, progress=False, resume=True).fit()
    straight = build_trainer(spec, tmp_path / "straight", progress=False).fit()
    assert resumed["steps"] == 150 and resumed["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-6)


def test_the_doctor_says_a_run_that_ended_in_an_error_did_not_finish(tmp_path, digits_spec, monkeypatch):
    import babysit.train.checkpoint as checkpoint

    def full_disk(state, fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(StorageError):
        build_trainer(digits_spec("train.checkpoint_every=50", steps=100), tmp_path, progress=False).fit()
    result = CliRunner().invoke(main, ["doctor", str(tmp_path)])
    assert result.exit_code == 0 and "every rule passed" not in result.output
    assert "has no summary.json" in result.output


def test_out_of_memory_is_one_line_with_the_batch_size(tmp_path, digits_spec):
    def oom(module, inputs, output):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has 79 GiB in use.")

    arm = At(2, lambda trainer: trainer.model.register_forward_hook(oom))  # step 3's forward runs out
    with pytest.raises(TrainingError) as err:
        build_trainer(digits_spec(steps=20), tmp_path, callbacks=[arm], progress=False).fit()
    assert "out of memory at step 3 with train.batch_size 32" in str(err.value)
    assert "Tried to allocate 2.00 GiB" in str(err.value) and "lower train.batch_size" in str(err.value)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_writes_a_checkpoint_prints_the_resume_command_and_resumes_exactly(tmp_path, signum, code):
    spec = tmp_path / "spec.yaml"
    raw = load_spec("digits-mlp").model_dump(mode="json")
    raw["train"].update(steps=2000, log_every=50, eval_every=2000, checkpoint_every=2000)
    raw["watch"]["enabled"] = False
    spec.write_text(json.dumps(raw))  # JSON is YAML
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "babysit.cli", "train", str(spec), "--out", str(run), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").is_file():
        time.sleep(0.05)
    time.sleep(0.3)  # some steps in
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == code, err[-2000:]
    assert f"continue with: babysit train {run / 'spec.yaml'} --out {run} --resume" in err
    assert "Traceback" not in err
    stopped_at = torch.load(run / CHECKPOINT, weights_only=True)["step"]
    assert 0 < stopped_at < 2000
    done = subprocess.run([sys.executable, "-m", "babysit.cli", "train", str(run / "spec.yaml"), "--out", str(run),
                           "--resume", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    # the uninterrupted run in a process of its own too: the test process's torch settings (threads,
    # left as earlier tests left them) must not differ from the interrupted run's
    straight_dir = tmp_path / "straight"
    subprocess.run([sys.executable, "-m", "babysit.cli", "train", str(spec), "--out", str(straight_dir), "--quiet"],
                   check=True, capture_output=True, timeout=600)
    straight = _strict_json(straight_dir / SUMMARY)
    resumed, whole = torch.load(run / CHECKPOINT, weights_only=True), torch.load(straight_dir / CHECKPOINT,
                                                                             weights_only=True)
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])
    assert _strict_json(run / SUMMARY)["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-9)
