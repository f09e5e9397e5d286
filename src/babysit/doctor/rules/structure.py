"""Rules on the model's structure (LECTURES.md §1, batch norm row); they need the model itself."""
from __future__ import annotations

from torch import nn

from babysit.doctor.findings import Finding, rule

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# BatchNorm estimates a mean and a std per feature from the batch: below 8 examples those
# estimates are so noisy that training and test behaviour part (the usual guidance, and the
# reason GroupNorm exists); MM3 trains at 32.
BN_MIN_BATCH = 8


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


@rule("bias-before-norm", order=600)
def bias_before_norm(view) -> list[Finding]:
    """A Linear/Conv with a bias whose next layer is a BatchNorm: the norm subtracts the bias at
    once, so its gradient is exactly zero (no threshold)."""
    if view.model is None:
        return []
    leaves, found = _leaves(view.model), []
    for (name, m), (next_name, nxt) in zip(leaves, leaves[1:]):
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m.bias is not None \
                and isinstance(nxt, NORMS):
            found.append(Finding("bias-before-norm", "info", name, {"feeds": next_name, "bias_size": m.bias.numel()},
                                 f"{name}'s bias is subtracted by {next_name} right away (its gradient is 0): "
                                 "drop it (model.bias: auto).", fix="bias-off"))
    return found


@rule("batchnorm-small-batch", order=610)
def batchnorm_small_batch(view) -> list[Finding]:
    """A model with BatchNorm trained on batches smaller than BN_MIN_BATCH."""
    if view.model is None or view.batch_size is None or view.batch_size >= BN_MIN_BATCH:
        return []
    norms = [n for n, m in view.model.named_modules() if isinstance(m, NORMS)]
    if not norms:
        return []
    return [Finding("batchnorm-small-batch", "warning", norms[0],
                    {"batch_size": view.batch_size, "threshold": BN_MIN_BATCH, "norm_layers": len(norms)},
                    f"BatchNorm estimates its statistics from {view.batch_size} examples, too few to be stable: "
                    f"use batches of {BN_MIN_BATCH} or more (train.batch_size: 32).", fix="larger-batch")]
