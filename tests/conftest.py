import os
from pathlib import Path

import pytest
import torch

from babysit.build import DEVICE_ENV
from babysit.spec import load_spec


# The one device of the suite: the CPU unless BABYSIT_TEST_DEVICE says otherwise (cuda on a GPU
# machine). Every spec's train.device "auto", every load_run and every CLI subprocess resolve to it
# through BABYSIT_DEVICE, so a test's own tensors go to the `device` fixture and meet the model there.
TEST_DEVICE = torch.device(os.environ.get("BABYSIT_TEST_DEVICE", "cpu"))
os.environ[DEVICE_ENV] = str(TEST_DEVICE)


@pytest.fixture
def device() -> torch.device:
    return TEST_DEVICE


@pytest.fixture(autouse=True)
def _report_only_where_tested(request, monkeypatch):
    """The end-of-run report (train.report, on by default) costs about a second of CPU per run for
    its figures; the suite trains about a hundred small runs, so only tests marked `report` write it."""
    if request.node.get_closest_marker("report") is None:
        monkeypatch.setattr("babysit.report.callback.writes_report", lambda spec: False)


@pytest.fixture
def tiny_names_spec():
    """makemore-bn shrunk to seconds: same data and model family, a few hundred steps."""
    def make(*overrides, steps=300):
        return load_spec("makemore-bn", [f"train.steps={steps}", f"schedule.milestones=[{steps // 2}]",
                                         "train.eval_every=100", "train.log_every=50",
                                         "train.checkpoint_every=100", "model.hidden=[32]", *overrides])
    return make


@pytest.fixture
def digits_spec():
    def make(*overrides, steps=200):
        return load_spec("digits-mlp", [f"train.steps={steps}", "train.eval_every=50", "train.log_every=25",
                                        "train.checkpoint_every=100", *overrides])
    return make


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
