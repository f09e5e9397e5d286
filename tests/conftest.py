from pathlib import Path

import pytest

from babysit.spec import load_spec


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


@pytest.fixture
def device():
    """The one device tests run on: babysit's own choice (CUDA when torch sees one, else the CPU)."""
    from babysit.build import select_device
    return select_device("auto")
