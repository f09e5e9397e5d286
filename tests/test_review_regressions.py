"""Regressions for problems a review found: each would crash, lose data or mislead."""
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from babysit import TrainingError, Watch, build_trainer, load_spec
from babysit.errors import BabysitWarning
from babysit.cli import main
from babysit.spec import SpecError
from babysit.watch.table import WatchRecord


def test_nan_in_a_sampled_step_stops_cleanly(tmp_path, digits_spec):
    spec = digits_spec("optim.name=sgd", "optim.lr=1e4", "train.log_every=200", "watch.every=200", steps=400)
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    assert summary["stopped"] and "non-finite" in summary["stopped"]


def test_a_model_without_activation_modules_still_gets_parameter_statistics():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.b(F.relu(self.a(x)))

    model = Functional()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = Watch(model, opt, every=5)
    for _ in range(10):
        loss = F.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 2, (16,)))
        opt.zero_grad(); loss.backward(); opt.step()
        watch.step(loss)
    watch.close()
    assert [s["step"] for s in watch.samples] == [1, 2, 5, 10]  # 2: the dense start of a user's loop
    assert {p["name"] for p in watch.samples[0]["params"]} == {"a.weight", "a.bias", "b.weight", "b.bias"}


def test_layers_are_reported_in_model_order():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 8), nn.Tanh())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = Watch(model, opt)
    loss = model(torch.randn(16, 4)).pow(2).mean()
    loss.backward(); opt.step(); watch.step(loss); watch.close()
    assert [r["name"] for r in watch.samples[0]["layers"]] == ["1", "3", "5"]


def test_resume_refuses_a_changed_optimizer(tmp_path, digits_spec):
    build_trainer(digits_spec(steps=100), tmp_path, progress=False).fit()
    with pytest.raises(TrainingError, match="different optim section"):
        build_trainer(digits_spec("optim.lr=0.05", steps=200), tmp_path, progress=False, resume=True).fit()
    extended = build_trainer(digits_spec(steps=200), tmp_path, progress=False, resume=True).fit()  # train.* may change
    assert extended["steps"] == 200


def test_a_directory_with_a_killed_runs_records_is_not_reused(tmp_path, digits_spec):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 50, "train_loss": 1.0}\n')
    with pytest.raises(TrainingError, match="already holds a run"):
        build_trainer(digits_spec(), tmp_path, progress=False).fit()


def test_plot_and_export_work_on_a_library_path_directory(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters())
    with Watch(model, opt, every=2, run_dir=tmp_path) as watch:
        for _ in range(6):
            loss = F.cross_entropy(model(torch.randn(16, 4)), torch.randint(0, 2, (16,)))
            opt.zero_grad(); loss.backward(); opt.step()
            watch.step(loss)
    assert [s["step"] for s in WatchRecord(tmp_path).samples] == [1, 2, 4, 5, 6]  # every 2, and 5 (dense start)
    assert CliRunner().invoke(main, ["plot", str(tmp_path)]).exit_code == 0
    assert (tmp_path / "plots" / "activations.png").exists()
    assert CliRunner().invoke(main, ["export", "tensorboard", str(tmp_path)]).exit_code == 0


def test_spec_rejects_embedding_outside_names_and_milestones_lost_to_warmup(tmp_path):
    with pytest.raises(SpecError, match="embed_dim is for character data"):
        load_spec("digits-mlp", ["model.embed_dim=4"])
    with pytest.warns(BabysitWarning, match=r"milestones \[9\].*after 4 warm-up steps.*dropped"):
        load_spec("digits-mlp", ["train.steps=12", "schedule.name=step", "schedule.milestones=[9]",
                                 "schedule.warmup_steps=4"])
