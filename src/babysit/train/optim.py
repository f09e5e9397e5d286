"""Optimizers and learning-rate schedules from the spec, all from torch.optim."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.optim import lr_scheduler as sched

from babysit.spec import OptimSpec, ScheduleSpec


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool) -> list[dict]:
    """L2 decay on weight matrices and kernels only: biases and norm gains/shifts (all 1-D) are
    usually not decayed (LECTURES.md §1), since shrinking them does not simplify the function.
    Without decay it is one group: each group costs the optimizer a pass per step."""
    if weight_decay == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decay_all or p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, spec: OptimSpec) -> torch.optim.Optimizer:
    groups = param_groups(model, spec.weight_decay, spec.decay_all)
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov)
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)
    if spec.name == "adamw":
        return torch.optim.AdamW(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)
    if spec.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=spec.lr, alpha=spec.alpha, eps=spec.eps, momentum=spec.momentum)
    if spec.name == "adagrad":
        return torch.optim.Adagrad(groups, lr=spec.lr, eps=spec.eps)
    if spec.name == "lbfgs":
        if spec.weight_decay:
            raise ValueError("optim.lbfgs takes no weight_decay in torch; add an L2 term to the loss instead")
        return torch.optim.LBFGS(model.parameters(), lr=spec.lr, line_search_fn="strong_wolfe")
    raise ValueError(f"unknown optimizer {spec.name!r}")


class Schedule:
    """One object for the Trainer to call: `step()` after every optimizer step, `on_eval(loss)`
    after every evaluation (reduce-on-plateau). A constant schedule without warm-up builds no
    torch scheduler at all, so it costs nothing per step.

    With warm-up, the main schedule starts counting when the warm-up ends."""

    def __init__(self, optimizer: torch.optim.Optimizer, spec: ScheduleSpec, total_steps: int):
        self.spec = spec
        warm = spec.warmup_steps
        self.warmup = (sched.LinearLR(optimizer, start_factor=1.0 / (warm + 1), total_iters=warm)
                       if warm else None)
        self.plateau = (sched.ReduceLROnPlateau(optimizer, factor=spec.factor, patience=spec.patience,
                                                min_lr=spec.min_lr) if spec.name == "plateau" else None)
        main = self._main(optimizer, spec, max(total_steps - warm, 1))
        if main is not None and self.warmup is not None:
            self.per_step: Optional[sched.LRScheduler] = sched.SequentialLR(
                optimizer, [self.warmup, main], milestones=[warm])
        else:
            self.per_step = main or self.warmup
        self.steps = 0

    @staticmethod
    def _main(optimizer, spec: ScheduleSpec, steps: int):
        if spec.name == "step":
            return sched.MultiStepLR(optimizer, milestones=spec.milestones, gamma=spec.factor)
        if spec.name == "exponential":
            return sched.ExponentialLR(optimizer, gamma=spec.gamma)
        if spec.name == "inverse_time":
            decay = spec.decay
            return sched.LambdaLR(optimizer, lambda t: 1.0 / (1.0 + decay * t))
        if spec.name == "cosine":
            return sched.CosineAnnealingLR(optimizer, T_max=steps, eta_min=spec.min_lr)
        if spec.name == "cosine_restarts":
            return sched.CosineAnnealingWarmRestarts(optimizer, T_0=spec.cycle_steps, T_mult=spec.cycle_mult,
                                                     eta_min=spec.min_lr)
        return None  # constant, plateau

    def step(self) -> None:
        self.steps += 1
        if self.per_step is not None and (self.plateau is None or self.steps <= self.spec.warmup_steps):
            self.per_step.step()

    def on_eval(self, val_loss: float) -> None:
        if self.plateau is not None and self.steps > self.spec.warmup_steps:
            self.plateau.step(val_loss)

    def state_dict(self) -> dict:
        return {"steps": self.steps,
                "per_step": self.per_step.state_dict() if self.per_step else None,
                "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        if self.per_step is not None and state["per_step"] is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state["plateau"] is not None:
            self.plateau.load_state_dict(state["plateau"])
