"""The `search:` section of a spec: which fields to tune, over what ranges, in which stages.

Parameters are named by their dotted spec path (`optim.lr`), so any numeric or choice field of
the spec can be searched without code. LECTURES.md §4: sample learning rate and regularization in
log space; coarse to fine (a wide, short stage, then narrower, longer ones); random by default.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from babysit.errors import SpecError
from babysit.reference import DIVERGE_FACTOR
from babysit.schema import Strict

ParamType = Literal["log_uniform", "uniform", "int", "log_int", "categorical"]
LOG_TYPES = ("log_uniform", "log_int")
INT_TYPES = ("int", "log_int")

# Coarse to fine: the next stage's range spans the best quarter of the finished trials (LECTURES.md
# §4 "narrow around the good region"); a quarter of 16 coarse trials is 4, enough to see a region.
KEEP_FRACTION = 0.25
# Each later stage first re-trains the previous stage's best two trials at its longer budget
# ("train longer" in LECTURES.md §4): a short budget ranks settings only roughly (a high lr wins
# early), so the runner-up of the coarse stage gets its long run too.
PROMOTE = 2
# Optuna's own default grace period is twice the heartbeat interval; a trial whose process has
# not written a heartbeat for that long is taken as killed.
HEARTBEAT_S = 10


class ParamSpec(Strict):
    """One searched field: a range (log_uniform, uniform, int, log_int) or a list of choices."""

    type: ParamType
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Optional[list[Any]] = None

    @model_validator(mode="after")
    def _check(self):
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("type 'categorical' needs choices: [a, b, ...] (got none)")
            if self.low is not None or self.high is not None:
                raise ValueError("type 'categorical' takes choices, not low/high")
            return self
        if self.choices is not None:
            raise ValueError(f"type '{self.type}' takes low and high, not choices "
                             "(use type: categorical for a list)")
        if self.low is None or self.high is None:
            raise ValueError(f"type '{self.type}' needs low and high (got low={self.low}, high={self.high})")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite, got low={self.low}, high={self.high}")
        if self.low >= self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        if self.type in LOG_TYPES and self.low <= 0:
            raise ValueError(f"type '{self.type}' samples in log space and needs low > 0, got low={self.low} "
                             "(use type: uniform for a range that includes 0)")
        if self.type in INT_TYPES and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"type '{self.type}' needs whole-number low and high, got {self.low}, {self.high}")
        return self

    @property
    def log(self) -> bool:
        return self.type in LOG_TYPES

    def sample(self, rng: np.random.Generator):
        """One random value (log-uniform for log types), as Optuna's RandomSampler draws them."""
        if self.type == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        if self.type in INT_TYPES:  # every integer in [low, high] reachable, in log space for log_int
            lo, hi = (math.log(self.low - 0.5 if self.low > 0.5 else self.low), math.log(self.high + 0.5)) \
                if self.log else (self.low - 0.5, self.high + 0.5)
        v = rng.uniform(lo, hi)
        v = math.exp(v) if self.log else v
        return int(min(max(round(v), self.low), self.high)) if self.type in INT_TYPES else float(v)

    def grid(self, points: int) -> list:
        """`points` values spread evenly over the range (in log space for log types)."""
        if self.type == "categorical":
            return list(self.choices)
        values = (np.geomspace if self.log else np.linspace)(self.low, self.high, points)
        values = np.clip(values, self.low, self.high)
        if self.type in INT_TYPES:
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]


class StageSpec(Strict):
    """One stage: how many trials, each trained for how many steps."""

    trials: Optional[int] = Field(None, ge=1, description="random/tpe: trials in this stage")
    steps: int = Field(..., ge=1, description="training steps of each trial")


class SearchSpec(Strict):
    params: dict[str, ParamSpec] = Field(..., min_length=1)
    stages: list[StageSpec] = Field(
        default_factory=lambda: [StageSpec(trials=16, steps=1000), StageSpec(trials=8, steps=4000)],
        min_length=1)
    sampler: Literal["random", "grid", "tpe"] = "random"
    pruner: Literal["divergence", "median"] = "divergence"
    divergence_factor: float = Field(DIVERGE_FACTOR, gt=1)
    keep: float = Field(KEEP_FRACTION, gt=0, le=1, description="fraction of finished trials a stage narrows around")
    promote: int = Field(PROMOTE, ge=0, description="later stages first re-train the last stage's best this many")
    grid_points: int = Field(7, ge=2, description="grid: values per numeric parameter")
    study: Optional[str] = Field(None, description="Optuna study name (default: the spec's name)")
    heartbeat_s: int = Field(HEARTBEAT_S, ge=1, description="a trial silent for 2x this is taken as killed")

    @model_validator(mode="after")
    def _check(self):
        for name in self.params:
            if not name or any(not part for part in name.split(".")):
                raise ValueError(f"params: '{name}' is not a dotted spec path such as optim.lr")
        for i, st in enumerate(self.stages):
            if self.sampler == "grid" and st.trials is not None:
                raise ValueError(f"stages[{i}]: sampler 'grid' runs every grid point "
                                 f"({self.grid_size()} here); remove trials")
            if self.sampler != "grid" and st.trials is None:
                raise ValueError(f"stages[{i}]: set trials (sampler '{self.sampler}')")
        return self

    def grid_size(self, space: Optional[dict[str, ParamSpec]] = None) -> int:
        """Points of the grid over `space` (default: the first stage's, `params`)."""
        space = self.params if space is None else space
        return int(np.prod([len(p.grid(self.grid_points)) for p in space.values()]))

    def stage_trials(self, stage: int, space: Optional[dict[str, ParamSpec]] = None) -> int:
        """Trials stage `stage` runs. A grid runs every point of the stage's own space: a later
        stage's narrowed space can hold fewer (a choice dropped, an int range shortened), so
        pass it for stages after the first."""
        if self.sampler != "grid":
            return self.stages[stage].trials
        if space is None and stage > 0:
            raise ValueError(f"stage {stage + 1} of a grid search: its number of trials depends on its "
                             "narrowed space; pass space=")
        return self.grid_size(space)

    def with_total_trials(self, total: int) -> "SearchSpec":
        """`--trials N`: N trials in all, shared among the stages in the spec's proportions."""
        if self.sampler == "grid":
            raise SpecError(f"--trials does not apply to sampler 'grid' (it runs all "
                             f"{self.grid_size()} points per stage); use random or tpe")
        if total < len(self.stages):
            raise SpecError(f"--trials {total} is fewer than the {len(self.stages)} stages; "
                             f"give at least {len(self.stages)}")
        weights = np.array([s.trials for s in self.stages], dtype=float)
        share = weights / weights.sum() * total
        counts = np.maximum(np.floor(share).astype(int), 1)
        for i in np.argsort(-(share - np.floor(share))):  # largest remainders take what is left
            if counts.sum() >= total:
                break
            counts[i] += 1
        while counts.sum() > total:  # the minimum of one per stage may overshoot: trim the largest
            counts[int(np.argmax(counts))] -= 1
        stages = [StageSpec(trials=int(c), steps=s.steps) for c, s in zip(counts, self.stages)]
        return self.model_copy(update={"stages": stages})
