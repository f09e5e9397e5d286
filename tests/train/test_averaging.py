"""Polyak averaging: the EMA equals the textbook recursion, its BatchNorm statistics are a fresh
pass over the train split (not the raw model's), and `eval --weights ema` reads ema.pt."""
import json

import pytest
import torch
from click.testing import CliRunner

from babysit import Callback
from babysit.cli import main
from babysit.runs import load_run
from babysit.session import build_trainer
from babysit.train.evaluate import evaluate


class Record(Callback):
    def __init__(self):
        self.params = []

    def on_step_end(self, trainer, step, loss):
        self.params.append({k: v.detach().clone() for k, v in trainer.model.named_parameters()})


def test_ema_is_the_exponential_average_of_the_weights(tmp_path, digits_spec):
    decay = 0.8
    rec = Record()
    summary = build_trainer(digits_spec(f"train.ema={{decay: {decay}}}", steps=6), tmp_path, callbacks=[rec],
                      progress=False).fit()
    ema = torch.load(tmp_path / "ema.pt", weights_only=True)["model"]
    for name in rec.params[0]:
        manual = rec.params[0][name]  # AveragedModel starts from the weights after the first step
        for p in rec.params[1:]:
            manual = decay * manual + (1 - decay) * p[name]
        assert torch.allclose(ema[name], manual, atol=1e-6), name
        assert not torch.allclose(ema[name], rec.params[-1][name])  # not simply the last weights
    assert summary["ema_decay"] == decay and "ema_val_acc" in summary and "val_acc" in summary


def test_bn_statistics_are_recomputed_for_the_averaged_model(tmp_path, digits_spec, device):
    spec = digits_spec("train.ema={decay: 0.95}", "model.batchnorm=true", "model.dropout=0", steps=80)
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    raw, ema = load_run(tmp_path), load_run(tmp_path, weights="ema")
    assert not torch.allclose(raw.model.bn1.running_mean, ema.model.bn1.running_mean, atol=1e-3)
    # A fresh pass: bn1 sees fc1's output over the whole train split.
    m = ema.model
    with torch.no_grad():
        h = m.fc1(m.flatten(m.prep(ema.data.train.x.to(device))))
    assert torch.allclose(m.bn1.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(m.bn1.running_var, h.var(0), rtol=1e-4, atol=1e-6)
    # the summary's EMA numbers are those of ema.pt
    val = evaluate(m, ema.data.val)
    assert summary["ema_val_loss"] == pytest.approx(val["loss"], rel=1e-5)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["ema_val_acc"] == summary["ema_val_acc"] and on_disk["val_acc"] == summary["val_acc"]
    out = CliRunner().invoke(main, ["eval", str(tmp_path), "--weights", "ema", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["loss"] == pytest.approx(summary["ema_val_loss"], rel=1e-5)


def test_weights_ema_without_ema_is_a_clear_error(tmp_path, digits_spec):
    build_trainer(digits_spec(steps=10), tmp_path, progress=False).fit()
    out = CliRunner().invoke(main, ["eval", str(tmp_path), "--weights", "ema"])
    assert out.exit_code == 1 and "no ema.pt" in out.output and "train.ema" in out.output


@pytest.mark.parametrize("decay", [0, 1, 1.5])
def test_decay_must_lie_in_the_open_unit_interval(digits_spec, decay):
    from babysit.spec import SpecError

    with pytest.raises(SpecError, match="train.ema.decay"):
        digits_spec(f"train.ema={{decay: {decay}}}")


def test_a_resumed_run_goes_on_averaging_where_it_stopped(tmp_path, digits_spec):
    """The average lives in checkpoint.pt, so 20 steps + resume to 40 equals 40 straight steps."""
    from babysit.data import build_data
    from babysit.session import build_trainer

    base = ["train.ema={decay: 0.9}", "train.checkpoint_every=20", "train.eval_every=20", "watch.enabled=false"]
    spec = digits_spec(*base, steps=40)
    data = build_data(spec.data)
    build_trainer(spec, tmp_path / "full", progress=False, data=data).fit()
    build_trainer(digits_spec(*base, steps=20), tmp_path / "split", progress=False, data=data).fit()
    build_trainer(spec, tmp_path / "split", progress=False, data=data, resume=True).fit()
    full = torch.load(tmp_path / "full" / "ema.pt")["model"]
    resumed = torch.load(tmp_path / "split" / "ema.pt")["model"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)
