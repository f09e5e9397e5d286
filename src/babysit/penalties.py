"""Regularization terms added to the loss (LECTURES.md §1: L2, L1). Unlike the optimizer's
weight decay they are part of the loss the run logs, so "turn regularization up: the loss must go
up" (LECTURES.md §2, item 4) can be checked on them. A penalty is a function model -> scalar,
registered by name in REGULARIZERS (`REGULARIZERS.register("mine", fn)`), which is where the
spec's `train.regularizer.name` is checked.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from babysit.registry import Registry

Penalty = Callable[[nn.Module], torch.Tensor]


def _weights(model: nn.Module):
    """Weight matrices and kernels only, as weight decay treats them: biases and norm parameters
    (1-D) are not regularized (LECTURES.md §1)."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


def l2(model: nn.Module) -> torch.Tensor:
    """0.5 * sum of squared weights: its gradient is the weights, as in weight decay."""
    return 0.5 * sum(p.pow(2).sum() for p in _weights(model))


def l1(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in _weights(model))


REGULARIZERS: Registry[Penalty] = Registry("regularizer")
REGULARIZERS.register("l2", l2)
REGULARIZERS.register("l1", l1)


def build_penalty(spec) -> Optional[tuple[Penalty, float]]:
    """(penalty, strength) for a spec's train.regularizer, or None when it adds nothing. The
    name was checked against REGULARIZERS when the spec loaded."""
    reg = spec.train.regularizer
    if reg is None or reg.strength == 0:
        return None
    return REGULARIZERS[reg.name], reg.strength


def with_penalty(loss: torch.Tensor, model: nn.Module, penalty: Optional[tuple[Penalty, float]],
                 scale: float = 1.0) -> torch.Tensor:
    """loss + scale * strength * penalty(model): the loss the Trainer minimizes (scale 1) and
    the one the checklist varies (check 3 raises scale, checks 2 and 5 set it to 0)."""
    if penalty is None or not scale:
        return loss
    fn, strength = penalty
    return loss + scale * strength * fn(model)
