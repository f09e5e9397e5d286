"""The learning-rate range test: find the learning rate first (LECTURES.md §2, item 6).

The lr grows exponentially from tiny to huge over a few hundred steps of the spec's own model,
optimizer and batch; the loss is smoothed and the sweep stops once it exceeds 3x its starting
value (item 8's rule) or turns non-finite. Below the falling range the loss barely moves (lr too
low); past it, the loss explodes (too high).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from babysit.data import Dataset
from babysit.errors import TrainingError
from babysit.preflight.checks import CheckResult, Setup, check
from babysit.preflight.setup import setup_from_spec
from babysit.reference import DIVERGE_FACTOR
from babysit.spec import Spec

SMOOTHING = 0.9  # exponential moving average of the per-step loss, bias-corrected
FALLING = 0.1  # the falling range starts once 10% of the sweep's whole drop is made
# Suggested lr: a decade below the lr of the lowest smoothed loss. Chosen over the minimum moved
# back by the smoothing's lag and over the end of the falling range on 21 setups
# (benchmarks/lr_find_rules.py): within 2% of the best lr tried on 8 of 21, median gap 2.6%,
# against 7/21 with median gaps of 11% and 13%, and the lag-corrected minimum diverged once.
SUGGEST_BELOW_MIN = 10.0
SAME_LR = 1.5  # a suggestion within this factor of the configured lr is no advice to change it


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed
    stopped_at: Optional[float] = None  # lr where the loss blew up (None: the sweep ended first)
    falling: tuple[float, float] = (math.nan, math.nan)
    suggested: float = math.nan
    planned_steps: int = 0  # the sweep's length had it not blown up (fastai's rules trim a tenth of it)

    def __str__(self) -> str:
        blew = f"{self.stopped_at:.2e}" if self.stopped_at else "not reached"
        text = (f"lr range test over {len(self.lrs)} steps: the loss falls from lr {self.falling[0]:.2e} "
                f"to {self.falling[1]:.2e}; blows up (3x rule) at {blew}; suggested lr {self.suggested:.2e}")
        if self.stopped_at is None:  # LECTURES.md §4: a range wide enough blows up at its top
            text += (f"\nthe loss never blew up below lr {self.lrs[-1]:.2g}, so the top of the usable range is "
                     "unknown; widen the sweep (--end) until it does")
        return text


def _analyse(result: LRFindResult) -> None:
    """Falling range: from where the smoothed loss has made FALLING of its whole drop (batch noise
    alone moves it by a few percent of its value), to its minimum.
    The suggestion sits a decade below the minimum: at the minimum the lr is already nearly too
    high for a run that lasts longer than the sweep (16 of lr_find_rules.py's 21 setups do best at 0.03-0.32x of it)."""
    losses, lrs = result.losses, result.lrs
    best = min(range(len(losses)), key=losses.__getitem__)
    threshold = losses[0] - FALLING * (losses[0] - losses[best])
    start = next((i for i, v in enumerate(losses) if v < threshold), best)
    result.falling = (lrs[min(start, best)], lrs[best])
    result.suggested = lrs[best] / SUGGEST_BELOW_MIN


def sweep(model: nn.Module, optimizer: torch.optim.Optimizer, next_batch: Callable[[], tuple],
          loss_fn: Callable, start: float = 1e-6, end: float = 10.0, steps: int = 300) -> LRFindResult:
    """Train `model` in place while the lr grows from start to end; loss_fn(model, x, y)."""
    if not 0 < start < end:
        raise TrainingError(f"lr range test needs 0 < start < end, got start={start}, end={end}")
    if isinstance(optimizer, torch.optim.LBFGS):
        raise TrainingError("the lr range test needs a first-order optimizer; L-BFGS does its own line search")
    factor = (end / start) ** (1.0 / max(steps - 1, 1))
    result = LRFindResult(planned_steps=steps)
    avg, first = 0.0, None
    model.train()
    for i in range(steps):
        lr = start * factor ** i
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next_batch()
        loss = loss_fn(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()  # a sync per step: this is a short diagnostic sweep, not training
        if not math.isfinite(value):
            result.stopped_at = lr
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smoothed = avg / (1 - SMOOTHING ** (i + 1))
        first = smoothed if first is None else first
        result.lrs.append(lr)
        result.losses.append(smoothed)
        if smoothed > DIVERGE_FACTOR * first:
            result.stopped_at = lr
            break
    if not result.losses:
        raise TrainingError(f"the loss was non-finite from the first step at lr {start:g}; check the data and init")
    _analyse(result)
    return result


def lr_range_test(spec: Spec, data: Optional[Dataset] = None, start: float = 1e-6, end: float = 10.0,
                  steps: int = 300) -> LRFindResult:
    """The sweep on the model, optimizer, loss and batch size `babysit train SPEC` would use."""
    return _sweep_setup(setup_from_spec(spec, data), start, end, steps)


def _sweep_setup(setup: Setup, start: float, end: float, steps: int) -> LRFindResult:
    model = copy.deepcopy(setup.model)
    batches = setup.training_batches()
    return sweep(model, setup.make_optimizer(model), batches.next, setup.loss, start, end, steps)


@check("lr-range", order=6)
def check_lr_range(setup: Setup, start: float = 1e-6, end: float = 10.0, steps: int = 300) -> CheckResult:
    """Check 6: where does the configured lr sit in the range test? Inside the falling range (up
    to the loss minimum) passes; below it the loss barely moves and past the minimum it is close
    to blowing up (warn); at or past the 3x point it fails. L-BFGS finds its step by line search."""
    groups = setup.optimizer_groups()
    if "line_search_fn" in groups[0]:
        return CheckResult("lr-range", "skip", {"optimizer": "lbfgs"}, "a first-order optimizer",
                           "L-BFGS sets its own step by a line search: no learning rate to range-test")
    lr = groups[0]["lr"]
    result = _sweep_setup(setup, start, end, steps)
    lo, hi = result.falling
    measured = {"lr": lr, "falling_from": float(f"{lo:.3g}"), "falling_to": float(f"{hi:.3g}"),
                "blows_up_at": float(f"{result.stopped_at:.3g}") if result.stopped_at else None,
                "suggested": float(f"{result.suggested:.3g}")}
    expected = "the lr inside the range where the loss falls, below the 3x blow-up point"
    # a value to try that differs from the lr: the suggestion, or the falling range's middle (log
    # scale) when the suggestion is within SAME_LR of the lr itself ("try 0.1" to a run at 0.1)
    other = result.suggested if abs(math.log(result.suggested / lr)) > math.log(SAME_LR) else math.sqrt(lo * hi)
    if result.stopped_at is not None and lr >= result.stopped_at:
        return CheckResult("lr-range", "fail", measured, expected,
                           f"lr {lr:g} is where the range test's loss blew up (3x rule); try {other:.2g}")
    if lr < lo:
        return CheckResult("lr-range", "warn", measured, expected,
                           f"lr {lr:g} is below the falling range: the loss will barely move; try {other:.2g}")
    if lr > hi:
        return CheckResult("lr-range", "warn", measured, expected,
                           f"lr {lr:g} is past the loss minimum of the sweep, close to blowing up; try {other:.2g}")
    return CheckResult("lr-range", "pass", measured, expected)
