"""Fixes edit the spec as documented; the repair plan applies one lr change per round."""
import re
from pathlib import Path

import pytest

from babysit.doctor import RULES, Finding
from babysit.doctor.fixes import FIXES
from babysit.doctor.fixes import plan_fixes
from babysit.spec import load_spec

DESIGN = Path("/work/shared/DESIGN.md")


def test_every_code_is_documented_and_has_a_rule_and_every_fix_is_registered():
    from babysit.pages import finding_pages

    documented = set(finding_pages())  # docs/findings.md, which `babysit explain` prints
    assert documented == set(RULES), (documented ^ set(RULES))
    if DESIGN.is_file():  # the design's table (where this workplace has it) is covered too
        table = DESIGN.read_text().split("Finding codes")[1].split("The library path")[0]
        design = set(re.findall(r"^\| `([a-z-]+)`", table, re.M))
        design |= {"update-ratio-low"}  # the table lists high / low in one row
        assert design <= set(RULES), design - set(RULES)
    named = {w for page in finding_pages().values() for part in re.findall(r"repair: ([^.;]+)", page)
             for w in re.findall(r"\b[a-z]+(?:-[a-z]+)+\b", part)}
    assert named and named <= set(FIXES), named - set(FIXES)  # the fixes the pages name are real
    assert len(RULES) >= 20


def _f(code, fix, **evidence):
    return Finding(code, "warning", "fc1.weight", evidence, "", fix)


def test_makemore_original_gets_output_scale_and_kaiming():
    spec = load_spec("makemore-original")
    new, changes = plan_fixes(spec, [_f("init-loss-high", "output-scale", first_loss=27, ln_C=3.3),
                                     _f("saturated-activations", "gain-init")])
    assert new.model.init.output.scale == 0.01 and new.model.init.output.bias == "zeros"
    assert new.model.init.hidden.weight == "kaiming" and new.model.init.hidden.bias == "zeros"
    assert [c["code"] for c in changes] == ["init-loss-high", "saturated-activations"]
    # a second round of the same saturation falls back to BatchNorm
    again, _ = plan_fixes(new, [_f("saturated-activations", "gain-init")])
    assert again.model.batchnorm is True


def test_lr_fixes_scale_by_the_documented_factors_and_one_per_round():
    spec = load_spec("makemore-kaiming")  # lr 0.1
    new, _ = plan_fixes(spec, [_f("update-ratio-high", "lower-lr", median_log10_update_data=-1.0)])
    assert new.optim.lr == pytest.approx(0.001)  # 10^(-1 - -3) = 100x too large
    new, _ = plan_fixes(spec, [_f("update-ratio-low", "raise-lr", median_log10_update_data=-5.5)])
    assert new.optim.lr == pytest.approx(31.6, rel=1e-2)  # 10^2.5 (under the 1000x cap)
    new, _ = plan_fixes(spec, [_f("loss-oscillating", "lower-lr")])
    assert new.optim.lr == pytest.approx(0.0333)
    both, changes = plan_fixes(spec, [Finding("loss-diverged", "error", "loss", {}, "", "lower-lr"),
                                      _f("update-ratio-low", "raise-lr", median_log10_update_data=-5.5)])
    assert both.optim.lr == pytest.approx(0.01) and len(changes) == 1  # the error wins
    # lowering: the strongest cut asked for (update-ratio-high at 10^-0.5 asks for /316 over the /10)
    strong, changes = plan_fixes(spec, [Finding("loss-diverged", "error", "loss", {}, "", "lower-lr"),
                                        _f("update-ratio-high", "lower-lr", median_log10_update_data=-0.5)])
    assert strong.optim.lr == pytest.approx(3.16e-4) and [c["code"] for c in changes] == ["update-ratio-high"]


def test_dead_units_fix_switches_to_leaky_relu_and_cuts_a_fast_lr():
    spec = load_spec("digits-mlp")  # relu, Adam 1e-3
    new, _ = plan_fixes(spec, [_f("dead-units", "leaky-relu", median_log10_update_data=-2.0, lr_too_high=True)])
    assert new.model.activation == "leaky_relu" and new.optim.lr == pytest.approx(1e-4)
    new, _ = plan_fixes(spec, [_f("dead-units", "leaky-relu", median_log10_update_data=-2.8, lr_too_high=False)])
    assert new.model.activation == "leaky_relu" and new.optim.lr == pytest.approx(1e-3)


def test_capacity_is_a_last_resort():
    spec = load_spec("makemore-kaiming")
    new, changes = plan_fixes(spec, [_f("underfitting", "capacity"),
                                     _f("update-ratio-low", "raise-lr", median_log10_update_data=-6.0)])
    assert [c["fix"] for c in changes] == ["raise-lr"] and new.model.hidden == [200]
    alone, _ = plan_fixes(spec, [_f("underfitting", "capacity")])
    assert alone.model.hidden == [800]


def test_underfitting_under_strong_regularization_cuts_it_first_and_alone():
    """Item 9, no gap: a weight decay above STRONG_DECAY (1e-2) is the cause; the lr cut and
    leaky ReLU for its dead units, gain-init for its vanishing gradients and more capacity wait."""
    symptoms = [_f("underfitting", "capacity", share_of_chance=0.93),
                _f("dead-units", "leaky-relu", median_log10_update_data=-1.5, lr_too_high=True),
                _f("vanishing-gradients", "gain-init"), _f("loss-plateau", "raise-lr")]
    heavy = load_spec("digits-mlp", ["optim.weight_decay=1.0", "model.dropout=0.1"])  # relu, Adam 1e-3
    new, changes = plan_fixes(heavy, symptoms)
    assert [c["fix"] for c in changes] == ["less-regularization"]
    assert new.optim.weight_decay == pytest.approx(1e-3) and new.model.dropout == pytest.approx(0.1)
    assert new.optim.lr == pytest.approx(1e-3) and new.model.activation == "relu" and new.model.hidden == heavy.model.hidden
    # an error finding still goes first, in the same round
    err = Finding("loss-diverged", "error", "loss", {}, "", "lower-lr")
    new, changes = plan_fixes(heavy, [err] + symptoms)
    assert [c["fix"] for c in changes] == ["lower-lr", "less-regularization"] and new.optim.lr == pytest.approx(1e-4)
    # dropout above L7's 0.5 and a penalty's strength count too; each strong one goes to the ladder's start
    drop = load_spec("digits-mlp", ["model.dropout=0.8", "train.regularizer.name=l2", "train.regularizer.strength=0.5"])
    new, changes = plan_fixes(drop, symptoms[:1])
    assert new.model.dropout == pytest.approx(0.25) and new.train.regularizer.strength == pytest.approx(1e-3)
    assert new.optim.weight_decay == pytest.approx(1e-4)  # digits-mlp's 1e-4 is not strong: left alone
    # at or below the bounds (weight decay 1e-2, dropout 0.5: the healthy small-data net) it is capacity
    mild = load_spec("digits-mlp", ["optim.weight_decay=0.01", "model.dropout=0.5"])
    new, changes = plan_fixes(mild, symptoms[:1])
    assert [c["fix"] for c in changes] == ["capacity"] and new.optim.weight_decay == pytest.approx(0.01)
    new, changes = plan_fixes(mild, symptoms)  # and the symptoms' own fixes go ahead
    assert {c["fix"] for c in changes} == {"leaky-relu", "lower-lr", "gain-init"}


def test_structure_and_regularization_fixes():
    bn = load_spec("makemore-bn", ["model.bias=true", "train.batch_size=2"])
    new, _ = plan_fixes(bn, [_f("bias-before-norm", "bias-off"), _f("batchnorm-small-batch", "larger-batch")])
    assert new.model.bias == "auto" and new.train.batch_size == 32
    d = load_spec("digits-mlp")  # dropout 0.1, weight decay 1e-4
    new, _ = plan_fixes(d, [_f("overfitting", "regularize")])
    assert new.model.dropout == pytest.approx(0.35) and new.optim.weight_decay == pytest.approx(1e-3)
    new, _ = plan_fixes(load_spec("makemore-kaiming"), [_f("overfitting", "regularize")])
    assert new.model.dropout == pytest.approx(0.25) and new.optim.weight_decay == pytest.approx(1e-3)
    assert set(FIXES) >= {"output-scale", "gain-init", "lower-lr", "raise-lr", "leaky-relu", "grad-clip",
                          "bias-off", "regularize", "standardize", "larger-batch", "capacity",
                          "less-regularization"}


def test_data_fix_standardizes_features_and_centres_images():
    mlp, _ = plan_fixes(load_spec("digits-mlp", ["data.preprocess=none"]), [_f("data-not-centered", "standardize")])
    assert mlp.data.preprocess == "standardize"
    cnn, _ = plan_fixes(load_spec("digits-cnn", ["data.preprocess=none"]), [_f("data-not-centered", "standardize")])
    assert cnn.data.preprocess == "center"


def test_nothing_left_to_fix_returns_none():
    spec = load_spec("makemore-bn")  # bias auto already
    assert plan_fixes(spec, [_f("bias-before-norm", "bias-off")]) == (None, [])
    assert plan_fixes(spec, [Finding("underfitting", "warning", None, {}, "")]) == (None, [])


def test_dead_units_lr_cut_goes_through_the_lr_group_one_change_per_round():
    """Review: leaky-relu cut the lr besides the lr group's own cut (Adam 0.05 -> 5e-06 in one round)."""
    from babysit.spec import spec_from_dict
    spec = spec_from_dict({"name": "x", "data": {"kind": "names"}, "optim": {"name": "adam", "lr": 0.05},
                           "model": {"kind": "mlp", "hidden": [64], "activation": "relu"}, "train": {"steps": 100}}, "x")
    dead = _f("dead-units", "leaky-relu", median_log10_update_data=-1.0, lr_too_high=True)
    new, changes = plan_fixes(spec, [dead, _f("update-ratio-high", "lower-lr", median_log10_update_data=-1.0)])
    assert new.model.activation == "leaky_relu" and new.optim.lr == pytest.approx(5e-4)  # one /100 cut
    assert sum("optim.lr" in c["change"] for c in changes) == 1
    # opposite directions in one round: the first (most severe) lr request decides, one change only
    new, changes = plan_fixes(spec, [dead, _f("update-ratio-low", "raise-lr", median_log10_update_data=-5.5)])
    assert new.optim.lr == pytest.approx(5e-4) and sum("optim.lr" in c["change"] for c in changes) == 1
    # the activation switch alone touches no lr
    alone = spec.model_dump(mode="json")
    FIXES["leaky-relu"](alone, dead)
    assert alone["optim"]["lr"] == 0.05 and alone["model"]["activation"] == "leaky_relu"
