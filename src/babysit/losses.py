"""The spec's `loss:`: what training minimizes, what evaluation reports, and what the first loss
is compared with (LECTURES.md §2 item 3: know the loss to expect before training).

    cross_entropy   softmax cross-entropy on logits, integer class labels (the default)
    bce             binary cross-entropy on logits (torch's BCEWithLogitsLoss), targets in [0, 1]
    mse             mean squared error, real-valued targets
    python:REF:fn   fn(outputs, targets) -> a scalar, from a module or file.py (babysit.factories)

A Loss also says how an ensemble or several test-time views combine (LECTURES.md §1: average
probabilities, never logits; regression: average the predictions) and what "correct" means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from babysit import factories
from babysit.errors import DataError
from babysit.registry import Registry

PYTHON_PREFIX = "python:"


def _matched(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One output per target: an (N, 1) output against (N,) targets drops its last axis; targets
    take the outputs' dtype (0/1 labels stored as integers)."""
    if outputs.ndim == targets.ndim + 1 and outputs.shape[-1] == 1:
        outputs = outputs.squeeze(-1)
    return outputs, targets.to(outputs.dtype)


def _bce(outputs, targets):
    return F.binary_cross_entropy_with_logits(*_matched(outputs, targets))


def _mse(outputs, targets):
    return F.mse_loss(*_matched(outputs, targets))


@dataclass(frozen=True)
class Loss:
    """name: the spec's value; kind: the doctor's RunView.loss_kind (cross_entropy, bce_with_logits,
    mse, other); fn(outputs, targets): the batch mean; classification: targets are class indices
    (the output has one logit per class)."""

    name: str
    kind: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    classification: bool

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fn(outputs, targets)

    # -- what the first loss should be (the checklist's initial-loss check) ------------------
    def reference(self, targets: torch.Tensor, num_classes: int) -> Optional[tuple[float, str, str]]:
        """(value, how it is named, its key in the check's numbers) of the loss a network with
        diffuse outputs starts at, or None when it is not known (a loss of the user's): ln(C) for
        a C-class softmax, ln 2 for a sigmoid at 0 (BCE), and for MSE the targets' variance
        (predicting their mean; a net whose outputs start near 0 is above it by their squared mean)."""
        if self.kind == "cross_entropy":
            return math.log(num_classes), f"ln({num_classes})", "ln_C"
        if self.kind == "bce_with_logits":
            return math.log(2.0), "ln(2)", "ln_2"
        if self.kind == "mse":
            return float(targets.double().var(unbiased=False)), "var(targets)", "var_targets"
        return None

    # -- combining members and views (evaluation) --------------------------------------------
    def to_space(self, outputs: torch.Tensor) -> torch.Tensor:
        """Outputs where averaging is meaningful: log-probabilities for the probabilistic losses
        (averaged as probabilities by `average`), the outputs themselves otherwise."""
        outputs = outputs.float()
        if self.kind == "cross_entropy":
            return F.log_softmax(outputs, dim=1)
        if self.kind == "bce_with_logits":
            return torch.stack([F.logsigmoid(outputs), F.logsigmoid(-outputs)], dim=-1)
        return outputs

    def average(self, stacked: torch.Tensor) -> torch.Tensor:
        """The mean along dim 0: of probabilities (logsumexp - log n, stable) or of predictions."""
        if self.kind in ("cross_entropy", "bce_with_logits"):
            return torch.logsumexp(stacked, dim=0) - math.log(stacked.shape[0])
        return stacked.mean(0)

    def summed(self, combined: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of the combined prediction, summed over the examples (the caller divides)."""
        if self.kind == "cross_entropy":
            return F.nll_loss(combined, targets, reduction="sum")
        if self.kind == "bce_with_logits":
            pos, neg = combined[..., 0], combined[..., 1]
            pos, t = _matched(pos, targets)
            neg = neg.squeeze(-1) if neg.shape != pos.shape else neg
            return -(t * pos + (1 - t) * neg).reshape(len(t), -1).mean(1).sum()
        if self.kind == "mse":
            out, t = _matched(combined, targets)
            return F.mse_loss(out, t, reduction="none").reshape(len(t), -1).mean(1).sum()
        return self.fn(combined, targets) * len(targets)

    def correct(self, combined: torch.Tensor, targets: torch.Tensor) -> Optional[torch.Tensor]:
        """(examples,) 1.0 where the prediction is right (per example; BCE: the share of its
        outputs on the right side of 1/2), or None when accuracy means nothing (regression)."""
        if self.kind == "bce_with_logits":
            pos, t = _matched(combined[..., 0] - combined[..., 1], targets)
            right = ((pos > 0) == (t > 0.5)).float()
            return right.reshape(len(t), -1).mean(1)
        if self.labels(targets) and combined.ndim == 2:
            return (combined.argmax(1) == targets).float()
        return None

    # -- targets -----------------------------------------------------------------------------
    def labels(self, targets: torch.Tensor) -> bool:
        """The targets are class indices: always for cross-entropy; for a loss of the user's, when
        they are one integer per example."""
        return self.classification or (self.kind == "other" and targets.ndim == 1
                                        and not targets.dtype.is_floating_point)

    def check_targets(self, targets: torch.Tensor, where: str) -> None:
        """A DataError when the targets cannot go with this loss (checked on a sample of them)."""
        floating = targets.dtype.is_floating_point
        if self.kind == "cross_entropy" and (floating or targets.ndim != 1):
            raise DataError(f"{where}: loss cross_entropy needs one integer class label per example, got "
                            f"{targets.dtype} targets of shape {tuple(targets.shape)}; for real-valued targets "
                            "set loss: mse, for 0/1 targets loss: bce")
        if self.kind == "bce_with_logits" and targets.numel():
            lo, hi = float(targets.min()), float(targets.max())
            if lo < 0 or hi > 1:
                raise DataError(f"{where}: loss bce needs targets in [0, 1], got values from {lo:g} to {hi:g}; "
                                "for class labels 0..C-1 use loss: cross_entropy")

    def outputs(self, targets: torch.Tensor, num_classes: int) -> int:
        """How many outputs the model needs per example: one per class for the softmax, else
        one per target value (1 for (N,) targets)."""
        if self.labels(targets):
            return num_classes
        return 1 if targets.ndim == 1 else math.prod(targets.shape[1:])


LOSSES: Registry[Loss] = Registry("loss")
for _loss in (Loss("cross_entropy", "cross_entropy", F.cross_entropy, classification=True),
              Loss("bce", "bce_with_logits", _bce, classification=False),
              Loss("mse", "mse", _mse, classification=False)):
    LOSSES.register(_loss.name, _loss)
CROSS_ENTROPY = LOSSES["cross_entropy"]


def is_python(name: str) -> bool:
    return name.startswith(PYTHON_PREFIX)


def kind_of(name: str) -> str:
    """RunView.loss_kind of the spec's `loss:`, without importing a user's code."""
    return "other" if is_python(name) else LOSSES[name].kind


def build_loss(name: str) -> Loss:
    """The Loss the spec's `loss:` names (a shipped one, or python:REF:fn)."""
    if is_python(name):
        ref = name[len(PYTHON_PREFIX):]
        return Loss(name, "other", factories.load(ref, "loss"), classification=False)
    return LOSSES[name]


def as_loss(fn: Callable) -> Loss:
    """The Loss of a function a user passes (babysit.preflight's loss_fn): torch's MSE and BCE
    with logits are recognized, anything else is taken as the softmax cross-entropy the checks
    assumed before there was a choice."""
    if isinstance(fn, Loss):
        return fn
    if fn is F.mse_loss or isinstance(fn, torch.nn.MSELoss):
        return LOSSES["mse"]
    if fn is F.binary_cross_entropy_with_logits or isinstance(fn, torch.nn.BCEWithLogitsLoss):
        return LOSSES["bce"]
    return CROSS_ENTROPY
