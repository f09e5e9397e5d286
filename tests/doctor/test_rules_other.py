"""Structure, train/val and preflight-derived rules."""
import math

from doctor_helpers import codes, view
from torch import nn

from babysit.doctor import RULES


def _bn_net(bias):
    return nn.Sequential(nn.Linear(4, 8, bias=bias), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))


def test_bias_before_norm_names_the_linear_layer():
    assert codes(RULES["bias-before-norm"](view(model=_bn_net(True)))) == [("bias-before-norm", "0")]
    assert RULES["bias-before-norm"](view(model=_bn_net(False))) == []
    assert RULES["bias-before-norm"](view()) == []  # no model, no structural finding


def test_batchnorm_small_batch_below_eight():
    assert codes(RULES["batchnorm-small-batch"](view(model=_bn_net(False), batch_size=4))) == \
        [("batchnorm-small-batch", "1")]
    assert RULES["batchnorm-small-batch"](view(model=_bn_net(False), batch_size=8)) == []
    plain = nn.Sequential(nn.Linear(4, 3))
    assert RULES["batchnorm-small-batch"](view(model=plain, batch_size=2)) == []


def _evals(vals, trains, gaps=None):
    gaps = gaps or [0.0] * len(vals)
    return [{"step": 100 * (i + 1), "val_loss": v, "train_probe_loss": t, "train_acc": 0.8 + g, "val_acc": 0.8}
            for i, (v, t, g) in enumerate(zip(vals, trains, gaps))]


def test_overfitting_when_val_turns_up_while_train_falls_and_the_accuracy_gap_grows():
    up = _evals([1.0, 0.8, 0.9], [0.9, 0.5, 0.3], [0.02, 0.05, 0.11])  # +12.5% from the best
    assert codes(RULES["overfitting"](view(evals=up))) == [("overfitting", None)]
    assert RULES["overfitting"](view(evals=_evals([1.0, 0.8, 0.87], [0.9, 0.5, 0.3], [0.02, 0.05, 0.11]))) == []
    assert RULES["overfitting"](view(evals=_evals([1.0, 0.8, 0.9], [0.9, 0.5, 0.3], [0.02, 0.05, 0.09]))) == []
    # a gap already as large at the best evaluation is not growing
    assert RULES["overfitting"](view(evals=_evals([1.0, 0.8, 0.9], [0.9, 0.5, 0.3], [0.02, 0.15, 0.12]))) == []


def test_underfitting_near_chance_without_a_gap_at_the_end():
    ln27 = math.log(27)
    near = _evals([0.85 * ln27], [0.84 * ln27])
    assert codes(RULES["underfitting"](view(evals=near, finished=True))) == [("underfitting", None)]
    assert RULES["underfitting"](view(evals=near, finished=False)) == []  # still training
    assert RULES["underfitting"](view(evals=_evals([0.75 * ln27], [0.74 * ln27]), finished=True)) == []
    gap = _evals([0.85 * ln27], [0.6 * ln27])
    assert RULES["underfitting"](view(evals=gap, finished=True)) == []
    levelled = _evals([0.86 * ln27, 0.85 * ln27], [0.85 * ln27, 0.84 * ln27])  # 1.2% gain
    assert codes(RULES["underfitting"](view(evals=levelled, finished=True))) == [("underfitting", None)]
    improving = _evals([0.9 * ln27, 0.85 * ln27], [0.89 * ln27, 0.84 * ln27])  # 5.6% gain: train longer
    assert RULES["underfitting"](view(evals=improving, finished=True)) == []


def _check(name, status, advice="", **measured):
    return {"name": name, "status": status, "measured": measured, "expected": "", "advice": advice}


def test_preflight_results_map_to_codes():
    data = _check("data", "warn", "set data.preprocess: standardize", mean_abs_over_std=0.6, std_spread=3.0)
    assert codes(RULES["data-not-centered"](view(preflight=[data]))) == [("data-not-centered", "input")]
    near = _check("data", "warn", "set data.preprocess: standardize", mean_abs_over_std=0.4, std_spread=3.0)
    assert RULES["data-not-centered"](view(preflight=[near])) == []
    spread = _check("data", "warn", "set data.preprocess: standardize", mean_abs_over_std=0.0, std_spread=250.0)
    assert RULES["data-not-centered"](view(preflight=[spread])) == []  # centred images, uneven pixels
    assert codes(RULES["cannot-overfit-tiny"](view(preflight=[_check("overfit-tiny", "fail")]))) == \
        [("cannot-overfit-tiny", None)]
    assert RULES["cannot-overfit-tiny"](view(preflight=[_check("overfit-tiny", "pass")])) == []
    assert codes(RULES["reg-not-increasing-loss"](view(preflight=[_check("regularization", "fail")]))) == \
        [("reg-not-increasing-loss", None)]
    assert RULES["reg-not-increasing-loss"](view(preflight=[_check("regularization", "pass")])) == []


def test_rules_register_in_the_packages_module_order():
    """Findings come out in registration order, and the repair plan breaks severity ties by it:
    a rule module importing a later one would reorder the findings (and the repairs)."""
    from babysit.doctor.findings import RULES

    modules = ["activations", "fit", "gradients", "loss", "preflight", "structure", "loop"]
    seen = [RULES[code].__module__.rsplit(".", 1)[1] for code in RULES]
    assert seen == sorted(seen, key=modules.index)
