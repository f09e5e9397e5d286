"""The checklist on planted bugs and their fixed counterparts (LECTURES.md §2)."""
import json

import pytest
import torch
from click.testing import CliRunner

from babysit.cli import main
from babysit.data import build_data
from babysit.data.base import Dataset, Split
from babysit.preflight.checklist import CHECKS, run_checks
from babysit.preflight.checks import check_data, check_initial_loss, check_overfit_tiny
from babysit.preflight.setup import setup_from_spec
from babysit.spec import load_spec


@pytest.fixture(scope="module")
def names_data():
    return build_data(load_spec("makemore-bn").data)


def test_original_makemore_fails_the_initial_loss_check_and_the_fix_passes(names_data):
    for preset, status in (("makemore-original", "fail"), ("makemore-kaiming", "pass"), ("makemore-bn", "pass")):
        result = check_initial_loss(setup_from_spec(load_spec(preset), names_data))
        assert result.status == status, (preset, result)
    bad = check_initial_loss(setup_from_spec(load_spec("makemore-original"), names_data))
    assert bad.measured["ratio"] > 3 and "scale the output layer" in bad.advice  # MM3: 27 vs 3.29


def test_lr_10_cannot_overfit_a_tiny_subset_and_the_presets_lr_can():
    """digits-mlp (Adam). The names MLPs with plain SGD memorize 32 examples even at lr 10 (the
    tanh units saturate, the embedding and output layer still fit), so they cannot plant this bug."""
    for lr, status in ((10.0, "fail"), (0.001, "pass")):
        result = check_overfit_tiny(setup_from_spec(load_spec("digits-mlp", [f"optim.lr={lr}"])))
        assert result.status == status, (lr, result)
        if status == "fail":
            assert result.measured["train_acc"] < 0.99 and "learning rate too large" in result.advice


def test_checks_do_not_train_the_model_they_are_given(names_data):
    setup = setup_from_spec(load_spec("makemore-bn"), names_data)
    before = {k: v.clone() for k, v in setup.model.state_dict().items()}
    run_checks(setup)
    assert all(torch.equal(before[k], v) for k, v in setup.model.state_dict().items())


def test_data_check_sees_inputs_after_preprocessing_and_flags_overlap():
    setup = setup_from_spec(load_spec("digits-mlp"))
    assert check_data(setup).status == "pass"  # standardized by the model's first layer
    setup.model.prep = None  # the raw pixels: 0..16, far from centred
    raw = check_data(setup)
    assert raw.status == "warn" and raw.measured["mean_abs_over_std"] > 0.5 and "preprocess" in raw.advice
    d = setup.data
    setup.data = Dataset(d.train, Split(d.train.x[:10], d.train.y[:10]), d.test, 10, d.input_shape)
    result = check_data(setup)
    assert result.measured["shared_train_val"] == 10 and "de-duplicate" in result.advice


def test_check_cli_exits_1_on_failure_and_prints_json():
    runner = CliRunner()
    bad = runner.invoke(main, ["check", "makemore-original", "--set", "model.hidden=[64]"])
    assert bad.exit_code == 1 and "FAIL  initial-loss" in bad.output
    good = runner.invoke(main, ["check", "digits-mlp", "--json"])
    assert good.exit_code == 0
    results = json.loads(good.output)
    assert [r["name"] for r in results] == list(CHECKS)
    assert all(r["status"] == "pass" for r in results), results


def test_makemore_bn_passes_every_check_that_applies():
    """The issue's bar: `babysit check presets/makemore-bn.yaml` passes (it has no regularization,
    so check 3 has nothing to check and says so)."""
    result = CliRunner().invoke(main, ["check", "presets/makemore-bn.yaml", "--json"])
    assert result.exit_code == 0, result.output
    statuses = {r["name"]: r["status"] for r in json.loads(result.output)}
    assert statuses == {"data": "pass", "initial-loss": "pass", "regularization": "skip", "gradcheck": "pass",
                        "overfit-tiny": "pass", "lr-range": "pass"}


def test_unknown_check_names_the_valid_ones():
    setup = setup_from_spec(load_spec("digits-mlp"))
    with pytest.raises(ValueError, match="unknown check 'speed'.*data, initial-loss, regularization"):
        run_checks(setup, ["speed"])


def test_images_are_judged_per_channel_so_a_blank_border_is_not_a_scale_problem():
    """digits-cnn only centres its pixels, as the lectures do for images; per pixel the blank
    border's tiny std would make the scales look 200x apart."""
    result = check_data(setup_from_spec(load_spec("digits-cnn")))
    assert result.status == "pass" and result.measured["stats_per"] == "channel"
    assert result.measured["mean_abs_over_std"] < 0.01
