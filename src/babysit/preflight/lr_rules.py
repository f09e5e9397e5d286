"""Rules that read an lr range test and name one learning rate: babysit's own and fastai's four.

fastai's `lr_find` (fastai 2.5+, `fastai.callback.schedule`) documents four suggestion functions,
written here from their definitions so benchmarks/lr_find_rules.py can score them on the very
sweeps babysit's rule reads. Each sees the sweep the way fastai's `lr_find` hands it over: the
first tenth of the planned steps and the last FASTAI_SKIP_END recorded points dropped.

- minimum: the lr of the lowest smoothed loss, divided by 10 (babysit's shipped rule too);
- steep: the lr where the loss falls fastest per unit of log lr;
- valley: the longest decreasing subsequence of the loss, and the point half-way along it (the
  index start + third + sixth of its span; fastai describes it as "the longest valley");
- slide: from the top of the sweep downwards, an interval of FASTAI_SLIDE_SPAN points slides left
  while the loss's slope at its two ends differs by more than FASTAI_SLIDE_THRESH; the suggestion
  is its left end where it stops.
"""
from __future__ import annotations

import math
from typing import Callable

from babysit.preflight.lr_find import LRFindResult

FASTAI_SKIP_START = 10  # fastai drops the first num_it // 10 points of its sweep...
FASTAI_SKIP_END = 5  # ...and the last 5 (the blow-up); both in fastai's lr_find
FASTAI_SLIDE_SPAN = 15  # slide's lr_diff: the interval's width in points (fastai's default)
FASTAI_SLIDE_THRESH = 0.005  # slide's thresh: loss-slope difference per point (fastai's default)
FASTAI_MINIMUM_DIVISOR = 10.0  # minimum: "one-tenth the minimum before divergence"


def fastai_view(result: LRFindResult) -> tuple[list[float], list[float]]:
    """The (lrs, smoothed losses) fastai's suggestion functions receive: the first tenth of the
    planned sweep and the last FASTAI_SKIP_END points dropped. A sweep too short for that keeps
    all its points (fastai would hand its functions an empty list)."""
    start = result.planned_steps // FASTAI_SKIP_START
    lrs, losses = result.lrs[start:-FASTAI_SKIP_END], result.losses[start:-FASTAI_SKIP_END]
    return (lrs, losses) if len(lrs) >= 2 else (list(result.lrs), list(result.losses))


def _argmin(values: list[float]) -> int:
    return min(range(len(values)), key=values.__getitem__)


def fastai_minimum(result: LRFindResult) -> float:
    lrs, losses = fastai_view(result)
    return lrs[_argmin(losses)] / FASTAI_MINIMUM_DIVISOR


def fastai_steep(result: LRFindResult) -> float:
    """The left end of the segment with the most negative d loss / d log lr."""
    lrs, losses = fastai_view(result)
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return lrs[_argmin(slopes)]


def fastai_valley(result: LRFindResult) -> float:
    """Half-way along the longest strictly decreasing subsequence of the loss (the first one
    found, when several are as long)."""
    lrs, losses = fastai_view(result)
    n = len(losses)
    run = [1] * n  # run[i]: length of the longest decreasing subsequence ending at point i
    for i in range(1, n):
        run[i] = max([run[j] + 1 for j in range(i) if losses[i] < losses[j]], default=1)
    end = run.index(max(run))
    start = end - run[end]
    span = (end - start) / 3
    return lrs[max(start + int(span) + int(span / 2), 0)]


def _gradient(values: list[float]) -> list[float]:
    """Per-point slope as numpy.gradient takes it: central differences inside, one-sided at the ends."""
    n = len(values)
    if n < 2:
        return [0.0] * n
    inner = [(values[i + 1] - values[i - 1]) / 2 for i in range(1, n - 1)]
    return [values[1] - values[0], *inner, values[-1] - values[-2]]


def fastai_slide(result: LRFindResult) -> float:
    lrs, losses = fastai_view(result)
    slope = _gradient(losses)
    right, left = len(losses) - 1, len(losses) - 1 - FASTAI_SLIDE_SPAN
    suggestion = lrs[max(left, 0)]
    while left >= 0 and abs(slope[right] - slope[left]) > FASTAI_SLIDE_THRESH:
        suggestion = lrs[left]
        right, left = right - 1, left - 1
    return suggestion


Rule = Callable[[LRFindResult], float]
FASTAI_RULES: dict[str, Rule] = {"minimum": fastai_minimum, "steep": fastai_steep,
                                 "valley": fastai_valley, "slide": fastai_slide}
