"""Optimizers and learning-rate schedules from the spec, all from torch.optim, each registered by
its spec name (OPTIMIZERS, SCHEDULES)."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn
from torch.optim import lr_scheduler as sched

from babysit.registry import Registry

if TYPE_CHECKING:
    from babysit.spec import OptimSpec, ScheduleSpec

# A function of a parameter's name: the factor its lr is multiplied by (finetune: the body's).
LRFactor = Callable[[str], float]


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool, lr: float,
                 lr_factor: Optional[LRFactor] = None) -> list[dict]:
    """L2 decay on weight matrices and kernels only: biases and norm gains/shifts (all 1-D) are
    usually not decayed (LECTURES.md §1), since shrinking them does not simplify the function.
    One group per (decayed, lr factor) pair that has parameters: each group costs the optimizer
    a pass per step, so without decay or factors it is one group."""
    groups: dict[tuple, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            decayed = bool(weight_decay) and (decay_all or p.ndim >= 2)
            factor = lr_factor(name) if lr_factor is not None else 1.0
            groups.setdefault((decayed, factor), []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decayed else 0.0, "lr": lr * factor}
            for (decayed, factor), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))]


OptimizerBuilder = Callable[[list, "OptimSpec"], torch.optim.Optimizer]
OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")
OPTIMIZERS.register("sgd", lambda groups, s: torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum,
                                                             nesterov=s.nesterov))
OPTIMIZERS.register("adam", lambda groups, s: torch.optim.Adam(groups, lr=s.lr, betas=s.betas, eps=s.eps))
OPTIMIZERS.register("adamw", lambda groups, s: torch.optim.AdamW(groups, lr=s.lr, betas=s.betas, eps=s.eps))
OPTIMIZERS.register("rmsprop", lambda groups, s: torch.optim.RMSprop(groups, lr=s.lr, alpha=s.alpha, eps=s.eps,
                                                                     momentum=s.momentum))
OPTIMIZERS.register("adagrad", lambda groups, s: torch.optim.Adagrad(groups, lr=s.lr, eps=s.eps))
# L-BFGS takes one group and no weight decay (the spec refuses it); its line search sets the step
OPTIMIZERS.register("lbfgs", lambda groups, s: torch.optim.LBFGS([p for g in groups for p in g["params"]],
                                                                 lr=s.lr, line_search_fn="strong_wolfe"))


def build_optimizer(model: nn.Module, spec: OptimSpec, lr_factor: Optional[LRFactor] = None) -> torch.optim.Optimizer:
    groups = param_groups(model, spec.weight_decay, spec.decay_all, spec.lr, lr_factor)
    return OPTIMIZERS[spec.name](groups, spec)


SchedulerBuilder = Callable[[torch.optim.Optimizer, "ScheduleSpec", int], Optional[sched.LRScheduler]]
SCHEDULES: Registry[SchedulerBuilder] = Registry("schedule")
SCHEDULES.register("constant", lambda opt, s, steps: None)
SCHEDULES.register("plateau", lambda opt, s, steps: None)  # stepped on evaluations (Schedule.on_eval)
SCHEDULES.register("step", lambda opt, s, steps: sched.MultiStepLR(opt, milestones=milestone_steps(s, steps),
                                                                   gamma=s.factor))
SCHEDULES.register("exponential", lambda opt, s, steps: sched.ExponentialLR(opt, gamma=s.gamma))
SCHEDULES.register("inverse_time", lambda opt, s, steps: sched.LambdaLR(opt, lambda t: 1.0 / (1.0 + s.decay * t)))
SCHEDULES.register("cosine", lambda opt, s, steps: sched.CosineAnnealingLR(opt, T_max=steps, eta_min=s.min_lr))
SCHEDULES.register("cosine_restarts", lambda opt, s, steps: sched.CosineAnnealingWarmRestarts(
    opt, T_0=s.cycle_steps, T_mult=s.cycle_mult, eta_min=s.min_lr))


def milestone_steps(spec: ScheduleSpec, main_steps: int) -> list[int]:
    """The step schedule's milestones in steps of the main schedule (which starts after the
    warm-up): fractions are of the whole run; milestones at or past the end are dropped (the spec
    warned of them)."""
    warm = spec.warmup_steps
    steps = [round(m * (main_steps + warm)) - warm if m < 1 else int(m) for m in spec.milestones]
    return [m for m in steps if 0 < m < main_steps]


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
        main = SCHEDULES[spec.name](optimizer, spec, max(total_steps - warm, 1))
        if main is not None and self.warmup is not None:
            self.per_step: Optional[sched.LRScheduler] = sched.SequentialLR(
                optimizer, [self.warmup, main], milestones=[warm])
        else:
            self.per_step = main or self.warmup
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        if self.per_step is not None and (self.plateau is None or self.steps <= self.spec.warmup_steps):
            s = self.per_step
            if isinstance(s, sched.MultiStepLR) and s.last_epoch + 1 not in s.milestones:
                # between milestones torch's step only counts (its lr is unchanged): counting here
                # saves ~10 us a step, 1-2% of a makemore step on a CPU core
                s.last_epoch += 1
                s._step_count += 1
            else:
                s.step()

    def advance(self, steps: int) -> None:
        """Move on `steps` steps without training: the lr a run continued from a step-`steps`
        checkpoint with a fresh optimizer has there (torch warns that no optimizer step came
        first; here that is the point)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                self.step()

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
