"""A Dataset-backed spec (data.kind python returning torch Datasets, read by a DataLoader with two
worker processes) resumes exactly after a SIGKILL: the same batches, dropout masks and final loss
as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from babysit import build_trainer, load_spec
from babysit.layout import CHECKPOINT

CODE = Path(__file__).resolve().parents[1] / "own" / "own_code.py"
SPEC = f"""
name: dataset-resume
seed: 3
data:
  kind: python
  factory: {CODE}:blob_datasets
  loader: {{workers: 2}}
model: {{kind: python, factory: "{CODE}:mlp", args: {{width: 32, dropout: 0.2}}}}
optim: {{name: sgd, lr: 0.05, momentum: 0.9}}
train: {{steps: 2400, batch_size: 32, eval_every: 600, log_every: 100, checkpoint_every: 200}}
"""


def test_dataset_spec_sigkill_then_resume_matches_uninterrupted(tmp_path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "babysit.cli", "train", str(spec_file), "--out", str(killed), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = killed / CHECKPOINT
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 400:
                break
        except Exception:  # read while being replaced: try again
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed; raise train.steps"
    os.kill(proc.pid, signal.SIGKILL)  # the DataLoader's workers die with their parent
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 400 <= killed_at < 2400 and killed_at % 600  # mid-epoch: 2048 / 32 = 64 batches per epoch
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((killed / "summary.json").read_text())

    straight = build_trainer(load_spec(spec_file), tmp_path / "straight", progress=False).fit()
    assert resumed["steps"] == straight["steps"] == 2400
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], abs=1e-6)
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"], abs=1e-6)
    assert straight["val_acc"] > 0.9  # it learnt: the blobs are separable
