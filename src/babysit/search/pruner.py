"""Pruning: stop a trial the moment its loss diverges (LECTURES.md §2.8: "if the cost ever exceeds
3 x the original cost, break out early"), optionally also when it trails the median."""
from __future__ import annotations

import math

import optuna
from optuna.pruners import BasePruner, MedianPruner

from babysit.reference import DIVERGE_FACTOR

# Median pruner: judge only after this many finished trials and this many reports in a trial, so
# early noise does not kill good trials (Optuna's defaults are 5 trials and 0 steps; a trial's
# first reports are the steep start of the loss curve, so we wait for a few).
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_REPORTS = 5


def diverged(values: dict[int, float], factor: float = DIVERGE_FACTOR) -> bool:
    """True when the latest reported loss is non-finite or above `factor` x the first one."""
    if not values:
        return False
    first, last = values[min(values)], values[max(values)]
    if not math.isfinite(last):
        return True
    return math.isfinite(first) and last > factor * first


class DivergencePruner(BasePruner):
    """Prunes a trial whose loss rose above `factor` x its first report or turned NaN/Inf; then
    asks `inner` (e.g. a median pruner), if any."""

    def __init__(self, factor: float = DIVERGE_FACTOR, inner: BasePruner | None = None):
        if not factor > 1:
            raise ValueError(f"DivergencePruner factor must be > 1, got {factor}")
        self.factor, self.inner = factor, inner

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if diverged(trial.intermediate_values, self.factor):
            return True
        return self.inner.prune(study, trial) if self.inner is not None else False


def _median(log_every: int) -> BasePruner:
    return MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                        n_warmup_steps=MEDIAN_WARMUP_REPORTS * log_every)


PRUNERS = {"divergence": lambda factor, log_every: DivergencePruner(factor),
           "median": lambda factor, log_every: DivergencePruner(factor, inner=_median(log_every))}


def build_pruner(name: str, factor: float = DIVERGE_FACTOR, log_every: int = 1) -> BasePruner:
    if name not in PRUNERS:
        raise ValueError(f"search.pruner: unknown pruner '{name}'; choose one of {', '.join(PRUNERS)}")
    return PRUNERS[name](factor, log_every)
