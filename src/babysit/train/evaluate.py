"""Evaluation: one loop for a model, a model under test-time augmentation and an ensemble.

The prediction is the softmax probability averaged over the members and over the views of each
input (a plain model is one member with one view; LECTURES.md §1: average probabilities, never
logits). Loss is its negative log-likelihood, summed in float64 on the device with one host sync
at the end. Every member runs in eval mode (BatchNorm on running statistics, no dropout) and
keeps its own mode afterwards.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Split
from babysit.errors import DataError

EVAL_CHUNK = 8192  # examples per forward pass; bounds memory on big splits
Views = Callable[[torch.Tensor], list[torch.Tensor]]  # a batch -> the same batch seen several ways


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def member_log_probs(models: Sequence[nn.Module], x: torch.Tensor, views: Optional[Views] = None) -> torch.Tensor:
    """(members, examples, classes): each member's log-probabilities, averaged over the views."""
    if not models:
        raise ValueError("an ensemble needs at least one member, got none")
    device = _device(models[0])
    out = []
    for m in models:
        was_training = m.training
        m.eval()
        seen = views(x) if views is not None else [x]
        logps = torch.stack([F.log_softmax(m(v.to(_device(m))).float(), dim=1) for v in seen])
        out.append(average_log_probs(logps).to(device))
        m.train(was_training)
    widths = sorted({lp.shape[1] for lp in out})
    if len(widths) > 1:
        raise ValueError(f"ensemble members predict different numbers of classes: {widths}")
    return torch.stack(out)


def average_log_probs(logps: torch.Tensor) -> torch.Tensor:
    """log of the mean of the probabilities along dim 0: logsumexp - log n (stable)."""
    return torch.logsumexp(logps, dim=0) - math.log(logps.shape[0])


@torch.no_grad()
def evaluate(model: Union[nn.Module, Sequence[nn.Module]], split: Split, views: Optional[Views] = None,
             chunk: int = EVAL_CHUNK) -> dict:
    """Loss and accuracy of `split`; given a list of members, also each member's accuracy and
    their mean, so the ensemble's gain over a single model can be read off."""
    ensemble = not isinstance(model, nn.Module)
    models = list(model) if ensemble else [model]
    if len(split) == 0:
        raise DataError("cannot evaluate on an empty split")
    device = _device(models[0]) if models else torch.device("cpu")
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    member_correct = torch.zeros(len(models), device=device, dtype=torch.long)
    for i in range(0, len(split), chunk):
        x, y = split.x[i:i + chunk].to(device), split.y[i:i + chunk].to(device)
        logps = member_log_probs(models, x, views)
        logp = average_log_probs(logps)
        loss_sum += F.nll_loss(logp, y, reduction="sum")
        correct += (logp.argmax(1) == y).sum()
        member_correct += (logps.argmax(2) == y).sum(1)
    n = len(split)
    result = {"loss": loss_sum.item() / n, "acc": correct.item() / n}
    if ensemble:
        member_acc = (member_correct.double() / n).tolist()
        result.update(members=len(models), member_acc=member_acc, mean_member_acc=sum(member_acc) / len(member_acc))
    return result
