"""Loss-curve rules on both sides of their thresholds (LECTURES.md §2 items 3, 6-8)."""
import math

from doctor_helpers import codes, view

from babysit.doctor import RULES
from babysit.doctor.rules import loss as L

LN27 = math.log(27)


def test_init_loss_high_fires_past_twice_ln_c_and_names_the_output_layer():
    assert codes(RULES["init-loss-high"](view([2.1 * LN27] + [3.0] * 9))) == [("init-loss-high", "out")]
    assert RULES["init-loss-high"](view([1.9 * LN27] + [3.0] * 9)) == []
    f = RULES["init-loss-high"](view([27.0] + [3.0] * 9))[0]
    assert f.evidence["ratio"] == round(27 / LN27, 2) and f.fix == "output-scale"


def test_init_loss_rules_skip_a_resumed_view():
    assert RULES["init-loss-high"](view([27.0] * 10, loss_start=1001)) == []


def test_init_loss_low_fires_below_half_ln_c():
    assert codes(RULES["init-loss-low"](view([0.4 * LN27] * 10))) == [("init-loss-low", None)]
    assert RULES["init-loss-low"](view([0.6 * LN27] * 10)) == []


def test_non_finite_in_loss_or_parameters():
    f = RULES["non-finite"](view([3.3, 3.0, math.nan, 2.0]))
    assert codes(f) == [("non-finite", "loss")] and f[0].evidence["first_bad_step"] == 3
    assert f[0].severity == "error"
    from doctor_helpers import param, sample
    s = sample(200, params=[param("fc1.weight", norm=math.inf)])
    assert codes(RULES["non-finite"](view(samples=[sample(1), s]))) == [("non-finite", "fc1.weight")]
    assert RULES["non-finite"](view([3.3, 3.0, 2.0])) == []


def test_loss_diverged_on_a_window_mean_past_three_times_the_first_loss():
    base = [3.0] * 20
    spike = base[:10] + [9.2] * L.DIVERGE_WINDOW + base[:5]  # 3.07x
    f = RULES["loss-diverged"](view(spike))
    assert codes(f) == [("loss-diverged", "loss")] and f[0].evidence["step"] == 15
    assert RULES["loss-diverged"](view(base[:10] + [8.8] * L.DIVERGE_WINDOW + base[:5])) == []
    # one unlucky batch alone does not count
    assert RULES["loss-diverged"](view(base[:10] + [20.0] + base[:9])) == []


def _curve(flat_steps, total=1000, start=3.3, end=2.0):
    return [start] * flat_steps + [start - (start - end) * min(1, (i + 1) / 100) for i in range(total - flat_steps)]


def test_loss_plateau_when_flat_for_a_third_of_the_run():
    assert codes(RULES["loss-plateau"](view(_curve(400)))) == [("loss-plateau", "loss")]
    assert RULES["loss-plateau"](view(_curve(200))) == []  # 20% of the run: under PLATEAU_SHARE
    assert RULES["loss-plateau"](view(_curve(400), loss_start=5001)) == []  # resumed: flat by nature
    rising = [3.3] * 400 + [3.3 + 0.01 * i for i in range(600)]  # flat, then up: not a plateau
    assert RULES["loss-plateau"](view(rising)) == []


def test_plateau_that_never_drops_is_lr_too_low_and_raises_the_lr():
    f = RULES["loss-plateau"](view([3.3 - 1e-4 * i for i in range(1000)]))[0]
    assert f.fix == "raise-lr"
    assert RULES["loss-plateau"](view(_curve(400)))[0].fix == "gain-init"  # flat, then learning: init


def test_loss_oscillating_needs_big_swings_and_no_progress():
    swing = [3.3 if i % 2 else 1.3 for i in range(400)]  # std 1.0 = 0.30 ln(27)
    assert codes(RULES["loss-oscillating"](view(swing))) == [("loss-oscillating", "loss")]
    small = [2.8 if i % 2 else 2.0 for i in range(400)]  # std 0.4 = 0.12 ln(27), under 0.15
    assert RULES["loss-oscillating"](view(small)) == []
    falling = [x - 1.5 * i / 400 for i, x in enumerate(swing)]  # same swings, real progress
    assert RULES["loss-oscillating"](view(falling)) == []
