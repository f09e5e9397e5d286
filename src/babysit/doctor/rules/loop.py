"""Rules on the user's own training loop, as Watch saw it: the loss's autograd graph (watch/graph.py)
and whether gradients are cleared between optimizer steps (watch/cleared.py). The Trainer builds
its loss and clears its gradients itself, so these speak to the library path."""
from __future__ import annotations

import math

from babysit.doctor.findings import Finding, rnd, rule

# Softmax or sigmoid outputs lie in [0, 1]; fed to a loss that applies its own softmax as logits,
# the best case (1 on the right class, 0 elsewhere) still gives p = e / (e + C - 1): the loss
# cannot go below ln(1 + (C - 1) / e), 1.461 for C = 10 (and train accuracy can still reach 100%).
SQUASHED_TOP = 1.0
# Fed to BCE-with-logits, values in [0, 1] give sigmoid(x) in [0.5, 0.73]: a positive's loss stays
# above -ln(sigmoid(1)) = 0.313 and a negative's above ln 2 = 0.693 (a ReLU output: the same ln 2).
BCE_FLOOR_POSITIVE, BCE_FLOOR_NEGATIVE = -math.log(1 / (1 + math.exp(-1.0))), math.log(2.0)
# grads-not-zeroed: from each sampled step Watch observes a few optimizer steps (watch/cleared.py
# WINDOW). A window is "kept" when every step it saw (step 1 aside: nothing to keep yet) started
# its backward on the previous step's gradients. A missing zero_grad keeps them in every window;
# gradient accumulation clears after each optimizer step and keeps none; a loop that clears once an
# epoch keeps the windows inside an epoch. Errors from KEPT_WINDOWS kept windows on, when they are
# at least KEPT_SHARE of the windows seen.
KEPT_WINDOWS, KEPT_SHARE = 2, 0.5


def _floor(activation: str, loss: str, classes):
    """The lowest loss the chain allows (see SQUASHED_TOP and BCE_FLOOR_*), or None."""
    if loss in ("cross_entropy", "nll") and activation in ("softmax", "sigmoid") and classes:
        return {"loss_floor": rnd(math.log(1 + (classes - 1) / math.exp(SQUASHED_TOP)))}
    if loss == "bce_with_logits" and activation in ("softmax", "sigmoid"):
        return {"loss_floor_positives": rnd(BCE_FLOOR_POSITIVE), "loss_floor_negatives": rnd(BCE_FLOOR_NEGATIVE)}
    if loss == "bce_with_logits" and activation == "relu":
        return {"loss_floor_negatives": rnd(BCE_FLOOR_NEGATIVE)}
    return {}


@rule("activation-before-loss", order=700)
def activation_before_loss(view) -> list[Finding]:
    """A softmax / sigmoid / ReLU (or exp of log_softmax) on the model's output before a loss that
    applies its own (cross-entropy, BCE-with-logits), before NLL (which wants log-probabilities), a
    softmax over a single unit, or a softmax over outputs already squashed (no threshold: the chain
    of operations in the loss's graph)."""
    before = (view.loss_graph or {}).get("before_loss")
    if not before:
        return []
    loss, act, where = view.loss_graph["loss"], before["activation"], before.get("layer") or "output"
    evidence = {"chain": view.loss_graph.get("ops"), "activation": act, "loss": loss, "reason": before["reason"],
                **_floor(act, loss, view.classes())}
    return [Finding("activation-before-loss", "error", where, evidence,
                    f"{before['reason']}: the {act} at {where} squashes the outputs before the loss, which then "
                    f"cannot get low (or learn at all). Remove it from the training path and apply it only "
                    f"when you need probabilities (at prediction time).")]


@rule("log-of-softmax", order=710)
def log_of_softmax(view) -> list[Finding]:
    """log(softmax(x)) written by hand: a probability that underflows to 0 gives -inf, then NaN
    (no threshold: read off the loss's graph)."""
    found = (view.loss_graph or {}).get("log_of_softmax")
    if not found:
        return []
    where = found.get("layer") or "loss"
    return [Finding("log-of-softmax", "warning", where, {"chain": view.loss_graph.get("ops")},
                    "log(softmax(x)) is computed in two steps: a probability that rounds to 0 gives log 0 = -inf "
                    "and then NaN at a high learning rate. Use F.log_softmax (with F.nll_loss), or give the "
                    "logits to F.cross_entropy.")]


def _windows(checks: list) -> list[list]:
    """The observations cut into runs of consecutive steps, step 1 left out."""
    runs, last = [], None
    for step, kept in sorted(checks):
        if step <= 1:
            continue
        if last is None or step != last + 1:
            runs.append([])
        runs[-1].append(bool(kept))
        last = step
    return runs


@rule("grads-not-zeroed", order=720)
def grads_not_zeroed(view) -> list[Finding]:
    """At least KEPT_WINDOWS observation windows (and KEPT_SHARE of them) in which every optimizer
    step started its backward on the previous step's gradients."""
    runs = _windows(view.grad_checks)
    kept = [r for r in runs if r and all(r)]
    if len(kept) < KEPT_WINDOWS or len(kept) < KEPT_SHARE * len(runs):
        return []
    return [Finding("grads-not-zeroed", "error", "optimizer",
                    {"windows_kept": len(kept), "windows": len(runs), "steps_observed": sum(map(len, runs)),
                     "threshold_windows": KEPT_WINDOWS},
                    "Gradients are never cleared between optimizer steps, so each step adds to the sum of all "
                    "earlier gradients: call optimizer.zero_grad() once per optimizer step (before backward, "
                    "or right after optimizer.step()).")]
