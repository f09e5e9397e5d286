"""Evaluation: one loop for a model, a model under test-time augmentation and an ensemble.

The prediction is averaged over the members and over the views of each input (a plain model is
one member with one view) where averaging means something: the softmax (or sigmoid)
probabilities for the cross-entropies (LECTURES.md §1: average probabilities, never logits), the
outputs themselves for regression (babysit/losses.py says which). Loss is the spec's loss of that
prediction, summed in float64 on the device with one host sync at the end; accuracy is None when
it means nothing (regression). Every member runs in eval mode (BatchNorm on running statistics,
no dropout) and keeps its own mode afterwards. A streamed split is read through its DataLoader.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from babysit.data import Split
from babysit.errors import DataError
from babysit.losses import CROSS_ENTROPY, Loss

EVAL_CHUNK = 8192  # examples per forward pass; bounds memory on big splits
Views = Callable[[torch.Tensor], list[torch.Tensor]]  # a batch -> the same batch seen several ways


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def member_predictions(models: Sequence[nn.Module], x: torch.Tensor, views: Optional[Views] = None,
                       loss: Loss = CROSS_ENTROPY) -> torch.Tensor:
    """(members, examples, ...): each member's prediction in the loss's averaging space
    (log-probabilities for cross-entropy), averaged over the views."""
    if not models:
        raise ValueError("an ensemble needs at least one member, got none")
    device = _device(models[0])
    out = []
    for m in models:
        was_training = m.training
        m.eval()
        seen = views(x) if views is not None else [x]
        preds = torch.stack([loss.to_space(m(v.to(_device(m)))) for v in seen])
        out.append(loss.average(preds).to(device))
        m.train(was_training)
    widths = sorted({tuple(p.shape[1:]) for p in out})
    if len(widths) > 1:
        raise ValueError(f"ensemble members predict different numbers of classes: {[w[0] for w in widths]}")
    return torch.stack(out)


def member_log_probs(models: Sequence[nn.Module], x: torch.Tensor, views: Optional[Views] = None) -> torch.Tensor:
    """(members, examples, classes): each member's softmax log-probabilities, averaged over the views."""
    return member_predictions(models, x, views, CROSS_ENTROPY)


def average_log_probs(logps: torch.Tensor) -> torch.Tensor:
    """log of the mean of the probabilities along dim 0: logsumexp - log n (stable)."""
    return CROSS_ENTROPY.average(logps)


@torch.no_grad()
def evaluate(model: Union[nn.Module, Sequence[nn.Module]], split: Split, views: Optional[Views] = None,
             chunk: int = EVAL_CHUNK, loss: Loss = CROSS_ENTROPY) -> dict:
    """Loss and accuracy of `split`; given a list of members, also each member's accuracy and
    their mean, so the ensemble's gain over a single model can be read off."""
    ensemble = not isinstance(model, nn.Module)
    models = list(model) if ensemble else [model]
    if len(split) == 0:
        raise DataError("cannot evaluate on an empty split")
    device = _device(models[0]) if models else torch.device("cpu")
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.float64)
    member_correct = torch.zeros(len(models), device=device, dtype=torch.float64)
    scored = True
    for x, y in split.batches(chunk):
        x, y = x.to(device), y.to(device)
        preds = member_predictions(models, x, views, loss)
        combined = loss.average(preds)
        loss_sum += loss.summed(combined, y)
        right = loss.correct(combined, y)
        scored = right is not None
        if scored:
            correct += right.sum()
            member_correct += torch.stack([loss.correct(p, y).sum() for p in preds])
    n = len(split)
    result = {"loss": loss_sum.item() / n, "acc": correct.item() / n if scored else None}
    if ensemble:
        member_acc = (member_correct / n).tolist() if scored else [None] * len(models)
        result.update(members=len(models), member_acc=member_acc,
                      mean_member_acc=sum(member_acc) / len(member_acc) if scored else None)
    return result
