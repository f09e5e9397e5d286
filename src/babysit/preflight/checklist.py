"""The babysitting checklist in its order (LECTURES.md §2) and the library entry point.

    results = babysit.preflight(model, F.cross_entropy, (x_train, y_train), optimizer=opt)
    print(results)          # one line per check: PASS / WARN / FAIL / SKIP, numbers, advice
    results.ok              # False when any check failed
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from babysit.preflight.checks import CheckResult, Setup, check_data, check_initial_loss, check_overfit_tiny
from babysit.preflight.lr_find import check_lr_range
from babysit.preflight.module_gradcheck import check_gradients
from babysit.preflight.regularization import check_regularization
from babysit.preflight.setup import SplitLike, setup_from_user

CHECKS: dict[str, Callable[[Setup], CheckResult]] = {
    "data": check_data,                      # 1. labels, balance, NaN/Inf, centring, overlap
    "initial-loss": check_initial_loss,      # 2. against ln(C)
    "regularization": check_regularization,  # 3. turned up, the loss goes up
    "gradcheck": check_gradients,            # 4. modules torch did not write
    "overfit-tiny": check_overfit_tiny,      # 5. a tiny subset, regularization off
    "lr-range": check_lr_range,              # 6. where the lr sits in the range test
}


class Checklist(list):
    """The results in checklist order."""

    @property
    def ok(self) -> bool:
        return not any(r.status == "fail" for r in self)

    def __str__(self) -> str:
        lines = []
        for r in self:
            numbers = ", ".join(f"{k} {v}" for k, v in r.measured.items())
            lines.append(f"{r.status.upper():5s} {r.name:<14} {numbers}")
            lines.append(f"      expected: {r.expected}")
            if r.advice:
                lines.append(f"      advice: {r.advice}")
        return "\n".join(lines)


def run_checks(setup: Setup, names: Optional[list[str]] = None) -> Checklist:
    """Run the named checks (all, in checklist order, by default). They train copies only, and
    under a forked random state: running them does not change the run that follows."""
    unknown = [n for n in names or [] if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; valid: {', '.join(CHECKS)}")
    devices = [setup.device.index or 0] if setup.device.type == "cuda" else []
    results = Checklist()
    for name in names or list(CHECKS):
        with torch.random.fork_rng(devices=devices):
            results.append(CHECKS[name](setup))
    return results


def preflight(model: nn.Module, loss_fn: Callable, train_data: SplitLike, *, val_data: Optional[SplitLike] = None,
              num_classes: Optional[int] = None, optimizer=None,
              regularizer: Optional[Callable[[nn.Module], torch.Tensor]] = None, reg_strength: float = 0.0,
              batch_size: int = 32, checks: Optional[list[str]] = None) -> Checklist:
    """The checklist for a user's own model and loop. loss_fn(logits, labels) is the data loss;
    regularizer(model) the penalty the loop adds with weight reg_strength; optimizer an instance
    or a function model -> optimizer (checks train copies; the model passed in is not changed)."""
    setup = setup_from_user(model, loss_fn, train_data, val_data=val_data, num_classes=num_classes,
                            optimizer=optimizer, regularizer=regularizer, reg_strength=reg_strength,
                            batch_size=batch_size)
    return run_checks(setup, checks)
