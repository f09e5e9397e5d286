"""Ensembles average probabilities (not logits), a 1-member ensemble is its member, `--seeds`
members differ, and runs of different data are refused with a clear error."""
import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from babysit.cli import main
from babysit.data import Split
from babysit.runs import load_run
from babysit.seeds import train_members
from babysit.session import build_trainer
from babysit.train.evaluate import average_log_probs, evaluate, member_log_probs
from babysit.train.trainer import build_start


def _fixed(logits):
    """A model that outputs the same logits for every input."""
    m = nn.Linear(1, len(logits))
    with torch.no_grad():
        m.weight.zero_()
        m.bias.copy_(torch.tensor(logits))
    return m


def test_probabilities_are_averaged_not_logits():
    # One very confident member for class 0, two mild ones for class 1: averaging logits picks 0
    # (20/3 > 4/3), averaging probabilities picks 1 ((1 + 2 * 0.119) / 3 = 0.413 < 0.587).
    models = [_fixed([20.0, 0.0]), _fixed([0.0, 2.0]), _fixed([0.0, 2.0])]
    x = torch.zeros(4, 1)
    probs = average_log_probs(member_log_probs(models, x)).exp()
    with torch.no_grad():
        manual = torch.stack([torch.softmax(m(x), 1) for m in models]).mean(0)
        logit_mean = torch.stack([m(x) for m in models]).mean(0)
    assert torch.allclose(probs, manual, atol=1e-6)
    assert probs[0, 1].item() == pytest.approx((2 * math.exp(2) / (1 + math.exp(2))) / 3, abs=1e-4)
    assert logit_mean.argmax(1).tolist() == [0] * 4 and probs.argmax(1).tolist() == [1] * 4
    r = evaluate(models, Split(x, torch.tensor([1, 1, 0, 1])))
    assert r["acc"] == 0.75 and r["member_acc"] == [0.25, 0.75, 0.75]
    assert r["loss"] == pytest.approx(-(3 * math.log(manual[0, 1]) + math.log(manual[0, 0])) / 4, rel=1e-5)


def test_one_member_ensemble_is_the_member(digits_spec):
    _, data, model = build_start(digits_spec())
    single, ens = evaluate(model, data.val), evaluate([model], data.val)
    assert ens["loss"] == single["loss"] and ens["acc"] == single["acc"] and ens["member_acc"] == [single["acc"]]


def test_seeds_train_different_members_and_their_ensemble(tmp_path, digits_spec):
    spec = digits_spec("seed=3", steps=60)
    summary = train_members(spec, tmp_path, 3, progress=False)
    assert summary["seeds"] == [3, 4, 5]
    runs = [load_run(tmp_path / f"member-{k}") for k in range(3)]
    assert [r.spec.seed for r in runs] == [3, 4, 5]
    w = [r.model.fc1.weight for r in runs]
    assert not torch.allclose(w[0], w[1]) and not torch.allclose(w[1], w[2])
    again = evaluate([r.model for r in runs], runs[0].data.test)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["test_acc"] == pytest.approx(again["acc"]) and on_disk["test_loss"] == pytest.approx(again["loss"])
    assert on_disk["mean_member_val_acc"] == pytest.approx(
        sum(json.loads((tmp_path / f"member-{k}" / "summary.json").read_text())["val_acc"] for k in range(3)) / 3)
    # the CLI over the parent folder gives the same numbers
    out = CliRunner().invoke(main, ["ensemble", str(tmp_path), "--split", "test", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["acc"] == pytest.approx(again["acc"])


def test_runs_of_different_classes_are_refused(tmp_path, digits_spec):
    for name, classes in (("a", "[0,1,2]"), ("b", "[0,1,2,3]")):
        build_trainer(digits_spec(f"data.classes={classes}", steps=20), tmp_path / name, progress=False).fit()
    out = CliRunner().invoke(main, ["ensemble", str(tmp_path / "a"), str(tmp_path / "b")])
    assert out.exit_code == 1
    assert "different data" in out.output and "3 vs 4 classes" in out.output and "data.classes" in out.output


def test_not_a_run_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    out = CliRunner().invoke(main, ["ensemble", str(tmp_path / "empty")])
    assert out.exit_code == 1 and "neither a babysit run" in out.output
