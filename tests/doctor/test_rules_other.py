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


def _evals(vals, trains):
    return [{"step": 100 * (i + 1), "val_loss": v, "train_probe_loss": t} for i, (v, t) in enumerate(zip(vals, trains))]


def test_overfitting_when_val_turns_up_while_train_falls():
    up = _evals([1.0, 0.8, 0.9], [0.9, 0.5, 0.3])  # +12.5% from the best, gap 67%
    assert codes(RULES["overfitting"](view(evals=up))) == [("overfitting", None)]
    assert RULES["overfitting"](view(evals=_evals([1.0, 0.8, 0.87], [0.9, 0.5, 0.3]))) == []  # +8.75%
    assert RULES["overfitting"](view(evals=_evals([1.0, 0.8, 0.9], [0.9, 0.5, 0.75]))) == []  # gap 17%


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


def _check(name, status, advice=""):
    return {"name": name, "status": status, "measured": {"x": 1}, "expected": "", "advice": advice}


def test_preflight_results_map_to_codes():
    data = _check("data", "warn", "set data.preprocess: center (images) or standardize (LECTURES.md §1)")
    assert codes(RULES["data-not-centered"](view(preflight=[data]))) == [("data-not-centered", "input")]
    assert RULES["data-not-centered"](view(preflight=[_check("data", "pass")])) == []
    overlap = _check("data", "warn", "de-duplicate before splitting")
    assert RULES["data-not-centered"](view(preflight=[overlap])) == []  # another data problem
    assert codes(RULES["cannot-overfit-tiny"](view(preflight=[_check("overfit-tiny", "fail")]))) == \
        [("cannot-overfit-tiny", None)]
    assert RULES["cannot-overfit-tiny"](view(preflight=[_check("overfit-tiny", "pass")])) == []
    assert codes(RULES["reg-not-increasing-loss"](view(preflight=[_check("regularization", "fail")]))) == \
        [("reg-not-increasing-loss", None)]
    assert RULES["reg-not-increasing-loss"](view(preflight=[_check("regularization", "pass")])) == []
