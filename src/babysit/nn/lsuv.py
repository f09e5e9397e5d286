"""Layer-Sequential Unit-Variance init (Mishkin & Matas 2016, "All you need is a good init").

Gains (LECTURES.md §1) are derived for one activation and an idealized input; LSUV measures
instead: orthogonal weights, then each layer's weight is rescaled until its output on a real
batch has std 1, layer after layer, so the std-0.01 collapse of L6's deep tanh net cannot happen.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from babysit.errors import DataError

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)  # nn.Linear covers DropConnectLinear and Maxout's inner linear


class _StopForward(Exception):
    """Raised by the hook once the watched layer has run: the rest of the net is not needed."""


def _layer_key(name: str) -> str:
    return name or "<model>"


def _forward_order(model: nn.Module, layers: dict[str, nn.Module], batch) -> list[str]:
    order: list[str] = []
    handles = []
    try:
        for name, layer in layers.items():
            def hook(_m, _i, _o, name=name):
                if name not in order:
                    order.append(name)
            handles.append(layer.register_forward_hook(hook))
        model(batch)
    finally:
        for h in handles:
            h.remove()
    return order


def _output_std(model: nn.Module, layer: nn.Module, batch) -> float:
    seen: list[float] = []

    def hook(_m, _i, out):
        seen.append(out.float().std().item())  # std over every element of the output
        raise _StopForward

    handle = layer.register_forward_hook(hook)
    try:
        model(batch)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return seen[0]


def lsuv_(model: nn.Module, batch, tol: float = 0.05, max_iters: int = 10) -> dict[str, float]:
    """Initialize `model` in place by LSUV on `batch` (the model's single input) and return
    {layer name: final output std} for every layer the batch reaches, in forward order.

    Every nn.Linear / nn.Conv1d / nn.Conv2d (subclasses included) gets an orthogonal weight and
    a zero bias. Then, in forward order, the layer's weight is divided by its output std until
    |std - 1| < tol or it was rescaled max_iters times. Runs in eval mode, so dropout-like
    noise does not keep the loop from converging and BatchNorm running stats stay untouched;
    each module's own train/eval flag is restored afterwards. Layers the batch never reaches
    are orthogonally initialized but not rescaled, and are missing from the returned dict.
    """
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters must be an int >= 1, got {max_iters!r}")
    layers = {_layer_key(n): m for n, m in model.named_modules() if isinstance(m, _LAYERS)}
    if not layers:
        raise ValueError(f"lsuv_ found no nn.Linear or nn.Conv2d layer to initialize in "
                         f"{type(model).__name__}; it only initializes those (and their subclasses)")
    modes = {m: m.training for m in model.modules()}
    stds: dict[str, float] = {}
    try:
        with torch.no_grad():
            for layer in layers.values():
                nn.init.orthogonal_(layer.weight)
                if layer.bias is not None:
                    layer.bias.zero_()
            model.eval()
            for name in _forward_order(model, layers, batch):
                layer = layers[name]
                std = _output_std(model, layer, batch)
                for _ in range(max_iters):
                    if abs(std - 1.0) < tol:
                        break
                    if not math.isfinite(std) or std == 0.0:
                        raise DataError(f"layer {name!r} has output std {std} on this batch, so it "
                                         f"cannot be rescaled to 1; feed a batch with varied, finite values")
                    layer.weight.div_(std)
                    std = _output_std(model, layer, batch)
                stds[name] = std
    finally:
        for m, training in modes.items():
            m.train(training)
    return stds
