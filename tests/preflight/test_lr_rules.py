"""fastai's four suggestion rules, written from their documented definitions, on sweeps whose
answer is known by construction (an lr grid 1.055x apart, as babysit's sweep makes)."""
import math

import pytest

from babysit.preflight.lr_find import LRFindResult
from babysit.preflight.lr_rules import (FASTAI_SKIP_END, FASTAI_SLIDE_SPAN, fastai_minimum, fastai_slide,
                                        fastai_steep, fastai_valley, fastai_view)

STEPS = 300
SKIP = STEPS // 10  # fastai drops the first tenth of the planned sweep


def sweep(losses: list[float]) -> LRFindResult:
    lrs = [1e-6 * 1.055 ** i for i in range(len(losses))]
    return LRFindResult(lrs=lrs, losses=losses, planned_steps=STEPS)


def falling_between(a: int, b: int, n: int = 260) -> list[float]:
    """Flat at 2.0 up to point a, falling by 0.005 a point up to b, then rising by 0.02 a point."""
    out = []
    for i in range(n):
        if i <= a:
            out.append(2.0)
        elif i <= b:
            out.append(2.0 - 0.005 * (i - a))
        else:
            out.append(2.0 - 0.005 * (b - a) + 0.02 * (i - b))
    return out


def test_fastai_sees_the_sweep_without_its_first_tenth_and_last_five_points():
    s = sweep([float(i) for i in range(100)])
    lrs, losses = fastai_view(s)
    assert losses[0] == SKIP and losses[-1] == 100 - 1 - FASTAI_SKIP_END
    assert lrs[0] == s.lrs[SKIP]


def test_minimum_is_a_tenth_of_the_lr_at_the_lowest_loss():
    s = sweep(falling_between(60, 180))
    assert fastai_minimum(s) == pytest.approx(s.lrs[180] / 10)


def test_minimum_ignores_a_low_point_in_the_dropped_first_tenth():
    losses = falling_between(60, 180)
    losses[3] = 0.0  # before the tenth fastai drops
    assert fastai_minimum(sweep(losses)) == pytest.approx(sweep(losses).lrs[180] / 10)


def test_steep_is_the_left_end_of_the_steepest_segment_in_log_lr():
    losses = falling_between(60, 180)
    bend = [0.0001 * (i - 120) ** 2 if i < 180 else 0.0001 * 59 ** 2 for i in range(len(losses))]
    losses = [v - b if i > 120 else v for i, (v, b) in enumerate(zip(losses, bend))]
    # each segment from 120 to 179 falls faster than the one before; 179 -> 180 falls slowly again
    assert fastai_steep(sweep(losses)) == pytest.approx(sweep(losses).lrs[178])


def test_valley_lands_half_way_along_the_longest_fall():
    s = sweep(falling_between(60, 180))
    # the longest decreasing run: the last flat point (60) to the minimum (180), 121 points
    start, end = 60 - 1 - SKIP, 180 - SKIP
    third = (end - start) / 3
    assert fastai_valley(s) == pytest.approx(fastai_view(s)[0][start + int(third) + int(third / 2)])
    assert s.lrs[115] <= fastai_valley(s) <= s.lrs[125]


def test_slide_stops_where_the_slope_stops_changing():
    # a steady rise at the top end: the first interval already has one slope at both ends
    s = sweep(falling_between(60, 180))
    assert fastai_slide(s) == pytest.approx(fastai_view(s)[0][-1 - FASTAI_SLIDE_SPAN])
    # a rise that curves up from point 200: the interval slides down until its right end is at the bend
    losses = falling_between(60, 260, n=260)
    losses[200:] = [losses[200] + 0.001 * (i - 200) ** 2 for i in range(200, 260)]
    found = sweep(losses).lrs.index(fastai_slide(sweep(losses)))
    assert 200 - FASTAI_SLIDE_SPAN - 3 <= found <= 200 - FASTAI_SLIDE_SPAN + 3


def test_rules_survive_a_sweep_shorter_than_fastais_trim():
    s = sweep([2.0, 1.5, 1.0, 3.0])
    for rule in (fastai_minimum, fastai_steep, fastai_valley, fastai_slide):
        assert math.isfinite(rule(s)) and rule(s) > 0
