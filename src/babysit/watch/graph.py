"""The loss's autograd graph, read once (at the first sampled step whose loss has one): which loss
the loop computes, and what was applied to the model's output right before it.

The nodes survive backward (only their saved tensors are freed), so the walk runs after the
user's own backward. From the loss, breadth first through the arithmetic a loop puts around a
loss (means, sums, scaling, penalties, casts), to the nearest loss node: F.cross_entropy is
NllLoss over LogSoftmax, BCE-with-logits, BCE and MSE have nodes of their own; a hand-written
cross-entropy is a Log. Below the loss the walk follows the prediction through shape-only ops
(views, transposes, casts) to the op that made it. Probe tags the nodes of recorded activations
with their layer's name, which is how a finding names the layer.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Optional

from babysit.watch.probe import TAG

# autograd node (its op name, "Backward<n>" cut off) -> the loss it computes
LOSSES = {"NllLoss": "nll", "NllLoss2d": "nll", "LogSoftmax": "cross_entropy",
          "BinaryCrossEntropyWithLogits": "bce_with_logits", "BinaryCrossEntropy": "bce",
          "MseLoss": "mse", "L1Loss": "other", "SmoothL1Loss": "other", "HuberLoss": "other",
          "KlDiv": "other", "SoftMarginLoss": "other", "MultiMarginLoss": "other",
          "MultilabelMarginLoss": "other", "CtcLoss": "other"}
# Ops that move or cast values without changing them: the walk looks through them.
SHAPE_OPS = {"View", "Reshape", "ReshapeAlias", "UnsafeView", "Permute", "Transpose", "T", "Squeeze",
             "Unsqueeze", "Expand", "Clone", "ToCopy", "Select", "Slice", "Index", "AsStrided", "Alias",
             "Flatten", "Unflatten", "Narrow", "Contiguous"}
SQUASHERS = {"Softmax": "softmax", "Sigmoid": "sigmoid", "Relu": "relu"}
# A loss sits a few nodes above the model's output; the walk gives up after this many nodes.
MAX_NODES = 200
CHAIN = 4  # ops below the loss kept as evidence


def _op(node) -> str:
    return re.sub(r"Backward\d*$", "", node.name()) if node is not None else ""


def _input(node, i: int = 0):
    fns = node.next_functions if node is not None else ()
    return fns[i][0] if len(fns) > i else None


def _through(node):
    """The first node below `node`'s first input that is not a shape-only op."""
    node = _input(node)
    while node is not None and _op(node) in SHAPE_OPS:
        node = _input(node)
    return node


def _tag(node) -> dict:
    return (node.metadata.get(TAG) or {}) if node is not None else {}


def _find_loss(root):
    """The loss node nearest the root: (op, node), or (None, None)."""
    queue, seen = deque([root]), set()
    while queue and len(seen) < MAX_NODES:
        node = queue.popleft()
        if node is None or node in seen:
            continue
        seen.add(node)
        op = _op(node)
        if op in LOSSES:
            return op, node
        if op == "Log" and _op(_through(node)) == "Softmax":
            return op, node  # a cross-entropy written by hand: -(y * log(softmax(x)))
        if op == "Pow" and _op(_through(node)) == "Sub":
            return op, node  # a squared error written by hand: ((f(x) - y) ** 2).mean()
        queue.extend(fn for fn, _ in node.next_functions)
    return None, None


def _squashed(pred, allowed: set) -> Optional[str]:
    """The squashing op that made `pred`, when it is one of `allowed`; exp(log_softmax) is a softmax."""
    op = _op(pred)
    if op == "Exp" and _op(_through(pred)) == "LogSoftmax":
        op = "Softmax"
    return SQUASHERS[op] if op in SQUASHERS and SQUASHERS[op] in allowed else None


def read_loss_graph(loss) -> dict:
    """{"loss": cross_entropy | nll | bce | bce_with_logits | mse | other, "ops": the ops from the
    loss node down, "before_loss": {activation, layer, reason, ...} or None, "log_of_softmax":
    {layer} or None}."""
    op, node = _find_loss(loss.grad_fn)
    out = {"loss": LOSSES.get(op, "other"), "ops": [], "before_loss": None, "log_of_softmax": None}
    if node is None:
        return out
    pred, own = _through(node), None  # own: the normaliser the loss applies itself (ends the chain)
    if op in ("NllLoss", "NllLoss2d") and _op(pred) in ("LogSoftmax", "Log"):
        own, op = pred, _op(pred)
        out["loss"] = "cross_entropy"
    elif op == "LogSoftmax":
        own = node
    if op == "Log":
        own = _through(own or node)  # the softmax under the log
        out["loss"] = "cross_entropy"
        out["log_of_softmax"] = {"layer": _tag(own).get("layer")}
    if op == "Pow":
        out["loss"] = "mse"
        pred = _through(pred)  # below the subtraction
    if own is not None:
        pred = _through(own)
    chain, n = [], node
    while n is not None and len(chain) < CHAIN:
        chain.append(_op(n))
        n = _through(n)
    out["ops"] = chain
    loss = out["loss"]
    reason = None
    if loss == "cross_entropy" and (act := _squashed(pred, {"softmax", "sigmoid", "relu"})):
        reason = "cross-entropy applies its own softmax to its input"
    elif loss == "nll" and (act := _squashed(pred, {"softmax", "sigmoid", "relu"})):
        reason = "nll_loss expects log-probabilities (log_softmax), not probabilities"
    elif loss == "bce_with_logits" and (act := _squashed(pred, {"softmax", "sigmoid", "relu"})):
        reason = "BCE-with-logits applies its own sigmoid to its input"
    elif _op(pred) == "Softmax":
        act, units = "softmax", None
        dim, shape = getattr(pred, "_saved_dim", None), _tag(pred).get("shape")
        if isinstance(dim, int) and shape and -len(shape) <= dim < len(shape):
            units = shape[dim]
        if units == 1:
            reason = "a softmax over a single unit is always 1"
        elif _squashed(_through(pred), {"softmax", "sigmoid"}):
            reason = "softmax applied to outputs already squashed into [0, 1]"
    if reason is not None:
        out["before_loss"] = {"activation": act, "layer": _tag(pred).get("layer"), "reason": reason,
                              "shape": _tag(pred).get("shape")}
    return out
