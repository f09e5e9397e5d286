"""A user's code in a spec (babysit.factories): model.factory, data.factory, loss: python:...;
the losses other than cross-entropy; model.init, fixes and fine-tuning on a user's network."""
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from babysit import build_trainer, load_spec
from babysit.data import build_data
from babysit.doctor.findings import Finding
from babysit.doctor.fixes import plan_fixes
from babysit.errors import DataError, SpecError
from babysit.finetune import build_finetune
from babysit.models import build_model
from babysit.preflight import run_checks
from babysit.preflight.setup import setup_from_spec
from babysit.spec import spec_from_dict
from babysit.train.evaluate import evaluate

CODE = Path(__file__).resolve().parent / "own" / "own_code.py"


def _spec(tmp_path, text: str, *overrides):
    """A spec file in tmp_path beside a copy of own_code.py, so relative references resolve there."""
    (tmp_path / "own_code.py").write_text(CODE.read_text())
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec(path, list(overrides))


BLOBS = """
data: {kind: python, factory: own_code.py:blob_tensors}
model: {kind: python, factory: own_code:mlp, args: {width: 16, dropout: 0.0}}
optim: {name: adam, lr: 0.01}
train: {steps: 150, eval_every: 50, log_every: 25, checkpoint_every: 150}
"""


# -- the spec ---------------------------------------------------------------------------------
def test_references_beside_the_spec_become_absolute(tmp_path):
    spec = _spec(tmp_path, BLOBS)
    assert spec.model.factory == f"{tmp_path.resolve() / 'own_code.py'}:mlp"  # a module name beside it too
    assert spec.data.factory == f"{tmp_path.resolve() / 'own_code.py'}:blob_tensors"
    again = spec_from_dict(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec  # the run folder's copy names the same code


@pytest.mark.parametrize("change, message", [
    ({"model": {"kind": "python"}}, "model.kind python needs model.factory"),
    ({"model": {"kind": "python", "factory": "m:f", "hidden": [64]}}, "model.hidden are for babysit's own models"),
    ({"model": {"kind": "mlp", "factory": "m:f"}}, "model.factory and model.args are for model.kind python"),
    ({"data": {"kind": "python", "factory": "m:f", "split": [0.5, 0.5, 0.0]}}, "data.split are for babysit's own"),
    ({"data": {"kind": "digits", "loader": {"workers": 2}}}, "data.loader is for torch Datasets"),
    ({"loss": "hinge"}, "unknown loss 'hinge'; valid: cross_entropy, bce, mse, or python:module:function"),
    ({"model": {"kind": "python", "factory": "no colon"}}, "model.factory: 'no colon' is not 'module:function'"),
])
def test_bad_specs_name_the_field(change, message):
    raw = {"data": {"kind": "digits"}, "train": {"steps": 10}, **change}
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec_from_dict(raw)


@pytest.mark.parametrize("ref, args, message", [
    ("missing.py:mlp", {}, "model.factory: no file .*missing.py"),
    ("own_code.py:nope", {}, "model.factory: .*own_code.py has no function 'nope'.*its callables: .*mlp"),
    ("own_code.py:mlp", {"widht": 3}, r"model.args: got an unexpected keyword argument 'widht' \(mlp takes: "
                                      r"num_classes, input_shape, width, dropout\)"),
    ("own_code.py:not_a_module", {}, "returned str; it must return a torch nn.Module"),
    ("no_such_module_xyz:f", {}, "model.factory: no module 'no_such_module_xyz'"),
])
def test_bad_factories_are_spec_errors(tmp_path, ref, args, message):
    spec = _spec(tmp_path, BLOBS, f"model.factory={ref}", f"model.args={args}")
    with pytest.raises(SpecError, match=message):
        build_model(spec, build_data(spec.data))


# -- data -------------------------------------------------------------------------------------
def test_tensor_data_and_refusals(tmp_path):
    data = build_data(_spec(tmp_path, BLOBS).data)
    assert (len(data.train), len(data.val), len(data.test), data.num_classes, data.input_shape) == (512, 128, 0, 4, (8,))
    (tmp_path / "bad.py").write_text(
        "import torch\n"
        "def three(): return torch.zeros(4, 2), torch.zeros(4), torch.zeros(4, 2)\n"
        "def labels(): return torch.zeros(8, 2), torch.tensor([0, 1] * 4), torch.zeros(4, 2), torch.tensor([0, 1, 2, 1])\n")
    for fn, message in (("three", r"returned 3 items \(Tensor, Tensor, Tensor\); it must return \(x_train"),
                        ("labels", r"val split: label 2 at index 2 is out of range \[0, 1\] for 2 classes")):
        spec = _spec(tmp_path, BLOBS, f"data.factory=bad.py:{fn}")
        with pytest.raises(DataError, match=message):
            build_data(spec.data)
    spec = _spec(tmp_path, BLOBS, "data.loader={workers: 2}")
    with pytest.raises(DataError, match="data.loader is for factories that return torch Datasets"):
        build_data(spec.data)


def test_dataset_data_stream_and_train(tmp_path):
    spec = _spec(tmp_path, BLOBS, "data.factory=own_code.py:blob_datasets", "data.args={n_train: 512}")
    data = build_data(spec.data)
    assert data.streamed and (len(data.train), len(data.val), data.num_classes) == (512, 256, 4)
    summary = build_trainer(spec, tmp_path / "run", progress=False).fit()
    assert summary["val_acc"] > 0.9
    # the checklist reads a sample of the streamed train split
    data_check = run_checks(setup_from_spec(spec), ["data"])[0]
    assert data_check.measured["sample"] == 512 and data_check.measured["classes_present"] == 4


# -- losses -----------------------------------------------------------------------------------
def test_mse_trains_and_its_initial_loss_is_judged_against_the_targets_variance(tmp_path):
    spec = _spec(tmp_path, BLOBS, "loss=mse", "data.args={regression: true}")
    data = build_data(spec.data)
    y = data.train.y
    assert data.num_classes == 1 and y.dtype == torch.float32
    first = {r.name: r for r in run_checks(setup_from_spec(spec), ["initial-loss", "overfit-tiny"])}
    init = first["initial-loss"]
    assert init.measured["var_targets"] == pytest.approx(float(y.double().var(unbiased=False)), rel=1e-3)
    # targets around 5 with a std near 2: a net starting near 0 is off by their squared mean
    assert init.measured["ratio"] > 1.5 and init.status != "pass" and "standardize the targets" in init.advice
    assert first["overfit-tiny"].status == "pass" and "loss_bound" in first["overfit-tiny"].measured
    summary = build_trainer(spec, tmp_path / "run", progress=False).fit()
    assert summary["val_acc"] is None and summary["val_loss"] < 0.2 * float(y.var())


def test_bce_on_binary_labels(tmp_path):
    (tmp_path / "binary.py").write_text(
        "from own_code import blob_tensors\n"
        "def load():\n    x, y, xv, yv = blob_tensors()\n    return x, (y % 2).float(), xv, (yv % 2).float()\n")
    spec = _spec(tmp_path, BLOBS, "loss=bce", "data.factory=binary.py:load")
    init = run_checks(setup_from_spec(spec), ["initial-loss"])[0]
    assert init.measured["ln_2"] == pytest.approx(math.log(2), abs=1e-4) and init.status == "pass"
    trainer = build_trainer(spec, tmp_path / "run", progress=False)
    assert trainer.fit()["val_acc"] > 0.9
    one = evaluate(trainer.model, trainer.val_split, loss=trainer.loss_fn)
    two = evaluate([trainer.model, trainer.model], trainer.val_split, loss=trainer.loss_fn)  # an ensemble of copies
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-6) and two["acc"] == one["acc"] > 0.9


def test_loss_and_targets_must_agree(tmp_path):
    spec = _spec(tmp_path, BLOBS, "data.args={regression: true}")
    with pytest.raises(DataError, match="loss cross_entropy needs one integer class label per example.*set loss: mse"):
        build_trainer(spec, tmp_path / "run", progress=False)
    spec = _spec(tmp_path, BLOBS, "loss=bce")
    with pytest.raises(DataError, match="loss bce needs targets in \\[0, 1\\], got values from 0 to 3"):
        build_trainer(spec, tmp_path / "run2", progress=False)


def test_python_loss(tmp_path):
    spec = _spec(tmp_path, BLOBS, "loss=python:own_code.py:huber", "data.args={regression: true}")
    init = run_checks(setup_from_spec(spec), ["initial-loss"])[0]
    assert init.status == "skip" and init.measured["initial_loss"] > 1
    summary = build_trainer(spec, tmp_path / "run", progress=False).fit()
    assert summary["val_loss"] < 0.5 * init.measured["initial_loss"]


# -- init, fixes, fine-tuning on a user's network ----------------------------------------------
def test_init_keeps_the_factory_init_unless_asked(tmp_path):
    spec = _spec(tmp_path, BLOBS)
    data = build_data(spec.data)
    torch.manual_seed(0)
    plain = build_model(spec, data)
    torch.manual_seed(0)
    scaled = build_model(_spec(tmp_path, BLOBS, "model.init.output.scale=0.01"), data)
    out_w, out_b = plain[5].weight, plain[5].bias
    assert torch.equal(scaled[0].weight, plain[0].weight)  # hidden layers: the factory's init
    assert torch.allclose(scaled[5].weight, 0.01 * out_w) and not scaled[5].bias.any() and out_b.any()
    torch.manual_seed(0)
    kaiming = build_model(_spec(tmp_path, BLOBS, "model.init.hidden.weight=kaiming"), data)
    # tanh follows fc0: std = 5/3 / sqrt(fan_in 8)
    assert float(kaiming[0].weight.detach().std()) == pytest.approx(5 / 3 / math.sqrt(8), rel=0.15)


def test_fixes_leave_a_user_architecture_alone(tmp_path):
    spec = _spec(tmp_path, BLOBS)
    found = [Finding("underfitting", "warning", None, {}, "", fix="capacity"),
             Finding("overfitting", "warning", None, {}, "", fix="regularize"),
             Finding("dead-units", "warning", "act1", {}, "", fix="leaky-relu"),
             Finding("activations-vanishing", "warning", "act1", {}, "", fix="gain-init"),
             Finding("initial-loss-high", "warning", "out", {"first_loss": 9, "ln_C": 1.4}, "", fix="output-scale")]
    new, changes = plan_fixes(spec, found)
    made = {c["fix"]: c["change"] for c in changes}
    assert set(made) == {"regularize", "gain-init", "output-scale", "lower-lr"}
    assert new.model.dropout == 0 and new.optim.weight_decay == 1e-3 and new.model.init.hidden.weight == "kaiming"
    assert new.model.init.output.scale == 0.01 and new.model.args == spec.model.args


def test_finetune_a_user_network(tmp_path):
    spec = _spec(tmp_path, BLOBS)
    build_trainer(spec, tmp_path / "src", progress=False).fit()
    source = torch.load(tmp_path / "src" / "checkpoint.pt", weights_only=True)["model"]
    new = _spec(tmp_path, BLOBS, "finetune.head_steps=20", "train.steps=40")
    trainer = build_finetune(tmp_path / "src", new, tmp_path / "ft", progress=False)
    assert torch.equal(trainer.model[0].weight, source["0.weight"])  # the body is the source's
    assert not torch.equal(trainer.model[5].weight, source["5.weight"])  # the head (last Linear) is fresh
    trainer.fit()
    named = _spec(tmp_path, BLOBS, "finetune.head=last")
    with pytest.raises(SpecError, match="finetune.head: the network has no module 'last'; its top-level modules: 0, 1"):
        build_finetune(tmp_path / "src", named, tmp_path / "ft2", progress=False)


def test_seeds_ensemble_of_a_user_network(tmp_path):
    from babysit.seeds import train_members

    summary = train_members(_spec(tmp_path, BLOBS, "train.steps=60"), tmp_path / "ens", 2, progress=False)
    assert summary["seeds"] == [0, 1] and len(summary["member_val_acc"]) == 2
    assert summary["val_acc"] >= min(summary["member_val_acc"]) > 0.5
    # the commands on run folders rebuild the network from the run's spec.yaml
    from click.testing import CliRunner

    from babysit.cli import main
    r = CliRunner().invoke(main, ["ensemble", str(tmp_path / "ens"), "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.output)["acc"] == pytest.approx(summary["val_acc"])
    r = CliRunner().invoke(main, ["doctor", str(tmp_path / "ens" / "member-0"), "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and isinstance(json.loads(r.output), list)


def test_dataset_items_must_be_pairs(tmp_path):
    (tmp_path / "triples.py").write_text(
        "import torch\n"
        "class T(torch.utils.data.Dataset):\n"
        "    def __len__(self): return 8\n"
        "    def __getitem__(self, i): return torch.zeros(2), 0, 'extra'\n"
        "def load(): return T(), T()\n")
    spec = _spec(tmp_path, BLOBS, "data.factory=triples.py:load")
    with pytest.raises(DataError, match=r"train Dataset: items must be \(x, y\) pairs .*ValueError: too many values"):
        build_data(spec.data)


def test_library_preflight_with_mse():
    import babysit

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x @ torch.linspace(-1, 1, 8)).unsqueeze(1)  # (N, 1), as nn.MSELoss wants against (N, 1) outputs
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    checks = {r.name: r for r in babysit.preflight(model, torch.nn.MSELoss(), (x, y),
                                                   checks=["data", "initial-loss", "overfit-tiny"])}
    assert checks["initial-loss"].measured["var_targets"] == pytest.approx(float(y.var(unbiased=False)), rel=1e-4)
    assert "target_mean" in checks["data"].measured and checks["overfit-tiny"].status == "pass"
