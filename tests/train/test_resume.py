"""Resume continues a run exactly: a SIGKILL mid-run, then --resume, gives the same final loss
as an uninterrupted run (CPU, same seed)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from babysit import build_trainer, load_spec
from babysit.errors import CheckpointError
from babysit.layout import CHECKPOINT
from babysit.watch.record import read_events

# Momentum, a step schedule and dropout: optimizer, schedule and RNG state all have to survive.
SPEC = """
name: resume-test
seed: 7
data: {kind: names, context: 3}
model: {kind: mlp, embed_dim: 8, hidden: [64, 64], activation: tanh, dropout: 0.1}
optim: {name: sgd, lr: 0.1, momentum: 0.9}
schedule: {name: step, milestones: [2000], factor: 0.1}
train: {steps: 4000, batch_size: 32, eval_every: 1000, log_every: 100, checkpoint_every: 500}
"""


def _babysit(*args):
    return [sys.executable, "-m", "babysit.cli", *args]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_babysit("train", str(spec_file), "--out", str(killed), "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = killed / CHECKPOINT
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 1000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise train.steps"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 1000 <= killed_at < 4000
    assert not (killed / "summary.json").exists()

    done = subprocess.run(_babysit("train", str(spec_file), "--out", str(killed), "--resume", "--quiet"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((killed / "summary.json").read_text())

    straight = build_trainer(load_spec(spec_file), tmp_path / "straight", progress=False).fit()
    assert resumed["steps"] == straight["steps"] == 4000
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], abs=1e-6)
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"], abs=1e-6)
    # The record holds each logged step once: events after the checkpoint were dropped on resume.
    steps = [e["step"] for e in read_events(killed, "train")]
    assert steps == sorted(set(steps)) and steps[-1] == 4000
    assert steps == [e["step"] for e in read_events(tmp_path / "straight", "train")]
    # ... and so does the Watch's record: every sampled step once, the same as uninterrupted.
    samples = [e["step"] for e in read_events(killed, "sample", filename="watch.jsonl")]
    assert samples == [e["step"] for e in read_events(tmp_path / "straight", "sample", filename="watch.jsonl")]
    assert samples == sorted(set(samples)) and samples[-1] == 4000


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path, tiny_names_spec):
    spec = tiny_names_spec(steps=100)
    build_trainer(spec, tmp_path / "run", progress=False).fit()
    ckpt = tmp_path / "run" / CHECKPOINT
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # truncated, as by a full disk
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is corrupt or truncated"):
        build_trainer(spec, tmp_path / "run", progress=False, resume=True).fit()
    assert ckpt.read_bytes() == before  # nothing lost or overwritten


def test_resume_without_checkpoint_names_the_directory(tmp_path, tiny_names_spec):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere"):
        build_trainer(tiny_names_spec(), tmp_path / "nowhere", progress=False, resume=True).fit()
