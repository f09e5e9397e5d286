"""Building the Setup the checks examine, from a spec (the CLI path) or from a user's own model,
loss and data (the library path), so both paths run the very same checks."""
from __future__ import annotations

import copy
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Dataset, Split
from babysit.errors import TrainingError
from babysit.data.augment import augmented
from babysit.losses import as_loss, build_loss
from babysit.penalties import build_penalty
from babysit.preflight.checks import Setup
from babysit.spec import Spec
from babysit.train.optim import build_optimizer
from babysit.train.trainer import build_start

SplitLike = Union[Split, tuple, torch.utils.data.TensorDataset]


def setup_from_spec(spec: Spec, data: Optional[Dataset] = None,
                    model: Optional[nn.Module] = None) -> Setup:
    """The model `babysit train` starts from (or `model`, e.g. the Trainer's own), its data,
    optimizer, loss and regularizer."""
    if model is None:
        _, data, model = build_start(spec, data)
    batch = spec.train.batch_for(len(data.train))
    return Setup(model=model, data=data, make_optimizer=lambda m: build_optimizer(m, spec.optim),
                 loss_fn=build_loss(spec.loss), penalty=build_penalty(spec), batch_size=batch,
                 augment=lambda sampler, train, seed: augmented(sampler, spec.data, train, seed))


def _as_split(value: Optional[SplitLike], what: str, labels: bool = True) -> Optional[Split]:
    if value is None or isinstance(value, Split):
        return value
    if isinstance(value, torch.utils.data.TensorDataset):
        value = value.tensors
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(t, torch.Tensor) for t in value):
        x, y = value
        if len(x) != len(y):
            raise ValueError(f"{what}: {len(x)} inputs but {len(y)} labels")
        if not labels:  # a regression loss (MSE, BCE): real-valued targets
            return Split(x, y)
        if y.dtype.is_floating_point:
            raise ValueError(f"{what}: labels must be integer class indices, got {y.dtype}")
        return Split(x, y.long())
    raise ValueError(f"{what} must be (inputs, labels) tensors, a TensorDataset or a babysit Split; "
                     f"got {type(value).__name__}")


def _optimizer_factory(optimizer, model: nn.Module) -> Callable[[nn.Module], torch.optim.Optimizer]:
    """Checks train copies of the model, so they need a factory; an optimizer instance is
    turned into one: its class and per-group settings, on the copy's matching parameters
    (its state is not copied)."""
    if optimizer is None:
        return lambda m: torch.optim.SGD(m.parameters(), lr=0.1)
    if isinstance(optimizer, torch.optim.Optimizer):
        position = {id(p): i for i, p in enumerate(model.parameters())}
        missing = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in position]
        if missing:
            raise ValueError(f"the optimizer holds {len(missing)} tensors that are not parameters of the model")

        def make(m: nn.Module) -> torch.optim.Optimizer:
            copies = list(m.parameters())
            return type(optimizer)([{**{k: v for k, v in g.items() if k != "params"},
                                     "params": [copies[position[id(p)]] for p in g["params"]]}
                                    for g in optimizer.param_groups])
        return make
    if callable(optimizer):
        return optimizer
    raise ValueError(f"optimizer must be a torch optimizer, a function model -> optimizer, or None; "
                     f"got {type(optimizer).__name__}")


def setup_from_user(model: nn.Module, loss_fn: Callable, train_data: SplitLike, *,
                    val_data: Optional[SplitLike] = None, num_classes: Optional[int] = None,
                    optimizer=None, regularizer: Optional[Callable[[nn.Module], torch.Tensor]] = None,
                    reg_strength: float = 0.0, batch_size: int = 32) -> Setup:
    labels = as_loss(loss_fn).classification if loss_fn is not None else True
    train = _as_split(train_data, "train_data", labels)
    val = _as_split(val_data, "val_data", labels) or train[:0]
    if num_classes is None:  # the softmax's width, as the model sees it
        with torch.no_grad():
            probe = copy.deepcopy(model).eval()(train.x[:2].to(next(model.parameters()).device))
        if not isinstance(probe, torch.Tensor):
            raise TrainingError(f"preflight needs a model that returns one tensor of logits; "
                                f"{type(model).__name__} returned a {type(probe).__name__}: pass a wrapper module "
                                "that returns the logits, e.g. the output's 'logits' entry")
        num_classes = probe.shape[-1]
    if regularizer is not None and reg_strength <= 0:
        raise ValueError(f"reg_strength must be > 0 with a regularizer, got {reg_strength}")
    data = Dataset(train, val, val, num_classes, tuple(train.x.shape[1:]))
    return Setup(model=model, data=data, make_optimizer=_optimizer_factory(optimizer, model),
                 loss_fn=loss_fn or F.cross_entropy,
                 penalty=(regularizer, reg_strength) if regularizer is not None else None,
                 batch_size=min(batch_size, len(train)))
