from pathlib import Path

import pytest

from babysit.spec import load_spec


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


@pytest.fixture
def device():
    """The one device tests run on: babysit's own choice (CUDA when torch sees one, else the CPU)."""
    from babysit.build import select_device
    return select_device("auto")
