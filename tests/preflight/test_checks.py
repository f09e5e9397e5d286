"""The checklist on planted bugs and their fixed counterparts (LECTURES.md §2)."""
import json

import pytest
import torch
from click.testing import CliRunner

from babysit.cli import main
from babysit.data import build_data
from babysit.data.base import Dataset, Split
from babysit.models import build_model
from babysit.preflight.checks import check_data, check_initial_loss, check_overfit_tiny, run_checks
from babysit.spec import load_spec
from babysit.train.optim import build_optimizer


def _setup(preset, *overrides):
    spec = load_spec(preset, list(overrides))
    torch.manual_seed(spec.seed)
    data = build_data(spec.data)
    return spec, data, build_model(spec, data)


@pytest.fixture(scope="module")
def names_data():
    return build_data(load_spec("makemore-bn").data)


def test_original_makemore_fails_the_initial_loss_check_and_the_fix_passes(names_data):
    for preset, status in (("makemore-original", "fail"), ("makemore-kaiming", "pass"), ("makemore-bn", "pass")):
        spec = load_spec(preset)
        torch.manual_seed(spec.seed)
        result = check_initial_loss(names_data, build_model(spec, names_data))
        assert result.status == status, (preset, result)
    bad = check_initial_loss(names_data, build_model(load_spec("makemore-original"), names_data))
    assert bad.measured["ratio"] > 3 and "scale the output layer" in bad.advice  # MM3: 27 vs 3.29


def test_lr_10_cannot_overfit_a_tiny_subset_and_lr_0_1_can(names_data):
    for lr, status in ((10.0, "fail"), (0.1, "pass")):
        spec = load_spec("makemore-bn", [f"optim.lr={lr}"])
        torch.manual_seed(0)
        model = build_model(spec, names_data)
        result = check_overfit_tiny(names_data, model, lambda m: build_optimizer(m, spec.optim))
        assert result.status == status, (lr, result)
    assert "learning rate too large" in result.advice or result.status == "pass"


def test_overfit_check_does_not_train_the_model_it_is_given(names_data):
    spec = load_spec("makemore-bn")
    model = build_model(spec, names_data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_overfit_tiny(names_data, model, lambda m: build_optimizer(m, spec.optim))
    check_initial_loss(names_data, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_data_check_sees_inputs_after_preprocessing_and_flags_overlap():
    spec, data, model = _setup("digits-mlp")
    assert check_data(data, model).status == "pass"  # standardized by the model's first layer
    raw = check_data(data, None)
    assert raw.status == "warn" and "not" not in raw.expected and "preprocess" in raw.advice
    leaky = Dataset(data.train, Split(data.train.x[:10], data.train.y[:10]), data.test, 10, data.input_shape)
    result = check_data(leaky, model)
    assert result.measured["shared_train_val"] == 10 and "de-duplicate" in result.advice


def test_check_cli_exits_1_on_failure_and_prints_json():
    runner = CliRunner()
    bad = runner.invoke(main, ["check", "makemore-original", "--set", "model.hidden=[64]"])
    assert bad.exit_code == 1 and "FAIL  initial-loss" in bad.output
    good = runner.invoke(main, ["check", "digits-mlp", "--json"])
    assert good.exit_code == 0
    results = json.loads(good.output)
    assert [r["name"] for r in results] == ["data", "initial-loss", "overfit-tiny"]
    assert all(r["status"] == "pass" for r in results)


def test_unknown_check_names_the_valid_ones():
    spec, data, model = _setup("digits-mlp")
    with pytest.raises(ValueError, match="unknown check 'speed'.*data, initial-loss, overfit-tiny"):
        run_checks(data, model, lambda m: build_optimizer(m, spec.optim), ["speed"])
