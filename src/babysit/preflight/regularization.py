"""Check 3 of the checklist (LECTURES.md §2, item 4): turn regularization up, the loss must go up.

A term added to the loss is checked where it acts: at the starting weights, the loss with the
strength raised RAISE-fold must be higher, and the term must reach the gradient (a detached or
forgotten term changes neither). Weight decay inside the optimizer never shows in the loss, so it
is checked where it acts instead: a few steps on one batch with the decay raised RAISE-fold must
leave smaller weights.
"""
from __future__ import annotations

import copy

import torch

from babysit.preflight.checks import CheckResult, Setup, check

RAISE = 10.0  # "turn it up": an order of magnitude, well clear of rounding
MIN_RISE = 1e-6  # relative: a rise smaller than this is rounding, not regularization
DECAY_STEPS = 5  # enough steps for decay to compound past the first step's noise


@check("regularization", order=3)
def check_regularization(setup: Setup) -> CheckResult:
    if setup.penalty is not None:
        return _check_penalty(setup)
    decay = max(g.get("weight_decay", 0.0) for g in setup.optimizer_groups())
    if decay:
        return _check_weight_decay(setup, decay)
    return CheckResult("regularization", "skip", {"regularization": "none"},
                       "raising the regularization strength raises the loss (checked when there is any)",
                       "nothing to check: set train.regularizer or optim.weight_decay when the run overfits")


def _check_penalty(setup: Setup) -> CheckResult:
    model = copy.deepcopy(setup.model).train()
    x, y = setup.examples(setup.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    losses, grads = [], []
    for scale in (1.0, RAISE):
        torch.manual_seed(0)  # the same dropout masks for both strengths
        loss = setup.loss(model, x, y, reg_scale=scale)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, allow_unused=True)
                                if g is not None]))
        losses.append(float(loss.detach()))
    rise = (losses[1] - losses[0]) / max(abs(losses[0]), 1e-12)
    grad_change = float((grads[1] - grads[0]).norm() / grads[0].norm().clamp_min(1e-12))
    fn, strength = setup.penalty
    measured = {"strength": strength, "loss": round(losses[0], 6), f"loss_at_{RAISE:g}x": round(losses[1], 6),
                "relative_rise": float(f"{rise:.3g}"), "gradient_change": float(f"{grad_change:.3g}")}
    expected = f"the loss and its gradient grow when the strength is raised {RAISE:g}x"
    if rise <= MIN_RISE:
        return CheckResult("regularization", "fail", measured, expected,
                           f"the regularization term ({getattr(fn, '__name__', fn)}) does not reach the loss: "
                           "it is computed but not added (or multiplied by 0); add strength * penalty to the loss")
    if grad_change <= MIN_RISE:
        return CheckResult("regularization", "fail", measured, expected,
                           "the regularization term raises the loss but not its gradient: it is detached from the "
                           "graph (.item(), .detach() or torch.no_grad()), so it cannot regularize")
    return CheckResult("regularization", "pass", measured, expected)


def _check_weight_decay(setup: Setup, decay: float) -> CheckResult:
    x, y = setup.examples(setup.batch_size)
    norms = []
    for scale in (1.0, RAISE):
        model = copy.deepcopy(setup.model).train()
        opt = setup.make_optimizer(model)
        for group in opt.param_groups:
            group["weight_decay"] = group.get("weight_decay", 0.0) * scale
        decayed = [p for g in opt.param_groups if g["weight_decay"] for p in g["params"]]
        for _ in range(DECAY_STEPS):
            torch.manual_seed(0)
            loss = setup.loss(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        norms.append(float(sum(p.detach().double().pow(2).sum() for p in decayed)))
    measured = {"weight_decay": decay, "weight_norm2": round(norms[0], 6), f"weight_norm2_at_{RAISE:g}x": round(norms[1], 6)}
    expected = f"{DECAY_STEPS} steps with the optimizer's weight decay raised {RAISE:g}x leave smaller weights"
    if norms[1] < norms[0]:
        return CheckResult("regularization", "pass", measured, expected)
    return CheckResult("regularization", "fail", measured, expected,
                       "raising the optimizer's weight decay did not shrink the weights: the decayed parameter "
                       "group holds no weights, or the optimizer ignores weight_decay")
