"""A layer's outputs and their statistics, measured the way Watch measures them while training
(watch/stats.py: the same saturation and dead-unit definitions), for the labs that look at a
network's units directly."""
from __future__ import annotations

import torch
from torch import nn

from babysit.activations import kind_of
from babysit.watch.stats import ACT_FIELDS, activation_stats, unpack


def layer_stats(h: torch.Tensor, kind: str) -> dict:
    """One layer's outputs (examples, units): mean, std, saturated, zero and dead shares (None
    where the kind has no such notion)."""
    stats = unpack(activation_stats(h[None], kind)[0].tolist(), ACT_FIELDS)
    del stats["hist"]
    return stats


def hidden_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """(name, kind, output) of every nonlinearity Watch would record, on x, in eval mode."""
    found = []
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: found.append((name, kind_of(mod), o.detach())))
             for name, m in model.named_modules() if kind_of(m) is not None]
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return found
