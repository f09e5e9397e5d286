"""Activation, gradient and update rules on both sides of their thresholds (LECTURES.md §3)."""
from doctor_helpers import codes, layer, param, sample, view

from babysit.doctor import RULES


def _two(first_layers=None, last_layers=None, **kw):
    return view(samples=[sample(1, first_layers, **kw), sample(200, last_layers, **kw)])


def test_saturation_past_forty_percent_of_a_tanh_layer():
    hot = _two([layer("act1", saturated=0.45), layer("act2")])
    assert codes(RULES["saturated-activations"](hot)) == [("saturated-activations", "act1")]
    assert RULES["saturated-activations"](_two([layer("act1", saturated=0.35), layer("act2")])) == []
    relu = _two([layer("act1", kind="relu", saturated=None, dead=0.0), layer("act2")])
    assert RULES["saturated-activations"](relu) == []


def test_dead_units_past_half_a_relu_layer():
    dead = [layer("act1", kind="relu", saturated=None, dead=0.55), layer("act2", kind="relu", saturated=None)]
    assert codes(RULES["dead-units"](_two(last_layers=dead))) == [("dead-units", "act1")]
    alive = [layer("act1", kind="relu", saturated=None, dead=0.45), layer("act2", kind="relu", saturated=None)]
    assert RULES["dead-units"](_two(last_layers=alive)) == []


def test_dead_units_evidence_says_when_the_feeding_weight_moves_too_fast():
    dead = [layer("act1", kind="relu", saturated=None, dead=0.6), layer("act2", kind="relu", saturated=None)]
    fast = [param("fc1.weight", update=-2.4), param("fc2.weight"), param("out.weight", (27, 10))]
    v = view(samples=[sample(1), sample(200, dead, fast)])
    f = RULES["dead-units"](v)[0]
    assert f.evidence["lr_too_high"] and f.evidence["median_log10_update_data"] == -2.4
    slow = [param("fc1.weight", update=-2.6), param("fc2.weight"), param("out.weight", (27, 10))]
    assert not RULES["dead-units"](view(samples=[sample(1), sample(200, dead, slow)]))[0].evidence["lr_too_high"]


def test_collapse_needs_small_std_and_a_drop_from_the_first_layer():
    assert codes(RULES["activations-collapse"](_two([layer("act1", std=0.5), layer("act2", std=0.009)]))) == \
        [("activations-collapse", "act2")]
    assert RULES["activations-collapse"](_two([layer("act1", std=0.5), layer("act2", std=0.011)])) == []
    # a small std everywhere (the whole net at small scale) is not a collapse with depth
    assert RULES["activations-collapse"](_two([layer("act1", std=0.008), layer("act2", std=0.006)])) == []


def test_vanishing_gradients_two_orders_toward_the_input():
    v = _two([layer("act1", grad_std=0.9e-5), layer("act2", grad_std=1e-3)])
    assert codes(RULES["vanishing-gradients"](v)) == [("vanishing-gradients", "act1")]
    assert RULES["vanishing-gradients"](_two([layer("act1", grad_std=1.1e-5), layer("act2", grad_std=1e-3)])) == []


def test_exploding_gradients_over_time_and_with_depth():
    over_time = view(samples=[sample(1, grad_norm=1.0), sample(200, grad_norm=150.0)])
    assert codes(RULES["exploding-gradients"](over_time)) == [("exploding-gradients", "model")]
    assert RULES["exploding-gradients"](view(samples=[sample(1, grad_norm=1.0), sample(200, grad_norm=50.0)])) == []
    deep = _two([layer("act1", grad_std=0.2), layer("act2", grad_std=1e-3)])
    assert codes(RULES["exploding-gradients"](deep)) == [("exploding-gradients", "act1")]


def _updates(u1, u2=-3.0):
    ps = [param("fc1.weight", update=u1), param("fc2.weight", update=u2), param("out.weight", (27, 10), update=-3.0)]
    return view(samples=[sample(1), sample(200, params=ps), sample(400, params=ps)])


def test_update_ratio_high_and_low_per_weight_matrix():
    assert codes(RULES["update-ratio-high"](_updates(-1.4))) == [("update-ratio-high", "fc1.weight")]
    assert RULES["update-ratio-high"](_updates(-1.6)) == []
    assert codes(RULES["update-ratio-low"](_updates(-3.0, -4.1))) == [("update-ratio-low", "fc2.weight")]
    assert RULES["update-ratio-low"](_updates(-3.0, -3.9)) == []  # the healthy suite's lowest: -3.68
