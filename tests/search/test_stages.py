"""Coarse to fine: narrowing in log space around the best trials; widening at an edge."""
import math

import pytest

from babysit.spec import ParamSpec
from babysit.search.stages import EDGE_FRACTION, MIN_WIDTH_FRACTION, PAD_FRACTION, narrow

LR = ParamSpec(type="log_uniform", low=1e-4, high=1.0)  # four decades


def results(lrs_and_losses):
    return [({"optim.lr": lr}, loss) for lr, loss in lrs_and_losses]


def test_log_ranges_narrow_in_decades_around_the_kept_trials():
    trials = results([(1e-2, 2.1), (2e-2, 2.2), (3e-2, 2.3), (1e-3, 2.9), (3e-1, 3.1), (2e-4, 3.3),
                      (0.5, math.nan), (5e-4, 3.0)])
    out = narrow({"optim.lr": LR}, trials, keep=3 / 7)  # 7 finite trials: the best 3 are kept
    new = out.space["optim.lr"]
    pad = PAD_FRACTION * 4  # decades
    assert math.log10(new.low) == pytest.approx(-2 - pad)
    assert math.log10(new.high) == pytest.approx(math.log10(3e-2) + pad)
    assert new.type == "log_uniform" and out.notes == []


def test_linear_ranges_narrow_linearly():
    p = ParamSpec(type="uniform", low=0.0, high=0.5)
    trials = [({"model.dropout": d}, loss) for d, loss in [(0.2, 2.0), (0.25, 2.1), (0.45, 2.5), (0.02, 2.6)]]
    new = narrow({"model.dropout": p}, trials, keep=0.5).space["model.dropout"]
    assert (new.low, new.high) == pytest.approx((0.2 - 0.05, 0.25 + 0.05))


def test_one_kept_trial_still_leaves_a_fifth_of_the_range():
    new = narrow({"optim.lr": LR}, results([(1e-2, 2.0), (1e-3, 2.5)]), keep=0.5).space["optim.lr"]
    assert math.log10(new.high / new.low) == pytest.approx(MIN_WIDTH_FRACTION * 4)
    assert math.sqrt(new.low * new.high) == pytest.approx(1e-2)


def test_best_at_the_top_edge_widens_past_it_and_says_so():
    best = 10 ** (-EDGE_FRACTION * 4 / 2)  # inside the top tenth (in decades) of [1e-4, 1]
    out = narrow({"optim.lr": LR}, results([(best, 2.0), (0.1, 2.2), (1e-3, 2.9), (1e-4, 3.0)]), keep=0.5)
    new = out.space["optim.lr"]
    pad = PAD_FRACTION * 4
    # the kept trials (best and 0.1), padded: [-1 - pad, log10(best) + pad], slid inside the old range
    low = -1 - pad - (math.log10(best) + pad)
    assert math.log10(new.low) == pytest.approx(low)
    # past the old bound: the range reaches as far beyond the best as half its narrowed width
    assert math.log10(new.high) == pytest.approx(math.log10(best) + (0 - low) / 2)
    assert new.high > 1.0
    assert len(out.notes) == 1 and "high edge of [0.0001, 1]" in out.notes[0] and "widening" in out.notes[0]


def test_best_at_the_low_edge_widens_downwards():
    out = narrow({"optim.lr": LR}, results([(1.2e-4, 2.0), (1e-3, 2.2), (0.5, 2.9)]), keep=0.34)
    assert out.space["optim.lr"].low < 1e-4 and "low edge" in out.notes[0]


def test_widening_stops_where_the_spec_would_be_invalid():
    p = ParamSpec(type="uniform", low=0.0, high=0.5)
    out = narrow({"model.dropout": p}, [({"model.dropout": 0.01}, 2.0), ({"model.dropout": 0.3}, 2.5)],
                 keep=0.5, valid=lambda name, v: v >= 0)
    assert out.space["model.dropout"].low == 0.0
    assert "rejects" in out.notes[0] and "keeping that bound" in out.notes[0]


def test_categorical_keeps_the_choices_of_the_kept_trials():
    p = ParamSpec(type="categorical", choices=["tanh", "relu", "gelu"])
    trials = [({"model.activation": a}, loss) for a, loss in [("relu", 2.0), ("gelu", 2.1), ("tanh", 2.6), ("relu", 2.7)]]
    out = narrow({"model.activation": p}, trials, keep=0.5)
    assert out.space["model.activation"].choices == ["relu", "gelu"]


def test_nothing_finished_keeps_the_ranges_and_says_why():
    out = narrow({"optim.lr": LR}, results([(0.5, math.nan)]), keep=0.25)
    assert out.space["optim.lr"] == LR and "no trial" in out.notes[0]


def test_min_keep_keeps_at_least_the_promoted_trials_in_range():
    trials = results([(1e-2, 2.0), (1e-3, 2.1), (0.5, 2.9), (2e-4, 3.0)])
    new = narrow({"optim.lr": LR}, trials, keep=0.25, min_keep=2).space["optim.lr"]
    assert new.low < 1e-3 and new.high > 1e-2
