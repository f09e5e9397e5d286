"""Weight init schemes with the gains of LECTURES.md §1: std = gain / sqrt(fan_in).

Gains: linear/sigmoid 1, tanh 5/3, ReLU sqrt(2). Leaky ReLU / PReLU use torch's
sqrt(2 / (1 + slope^2)); ELU, GELU and SiLU are ReLU-like, so they take ReLU's sqrt(2).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from babysit.spec import LayerInit

GAINS = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "leaky_relu": nn.init.calculate_gain("leaky_relu", 0.01),
    "prelu": nn.init.calculate_gain("leaky_relu", 0.25),  # PReLU starts at slope 0.25
    "elu": math.sqrt(2.0),
    "gelu": math.sqrt(2.0),
    "silu": math.sqrt(2.0),
}


def fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()  # Linear: in_features; Conv: in_channels * kernel area


@torch.no_grad()
def init_layer(layer: nn.Module, how: LayerInit, activation: str) -> None:
    """Initialize a Linear/Conv layer's weight and bias as `how` says."""
    w = layer.weight
    gain = GAINS[activation]
    scheme = "kaiming" if how.weight == "auto" else how.weight
    if scheme == "zeros":
        w.zero_()
    elif scheme == "normal":
        w.normal_(0.0, how.std)
    elif scheme == "xavier":  # L6's Xavier: randn / sqrt(fan_in), unit variance for tanh-like units
        w.normal_(0.0, 1.0 / math.sqrt(fan_in(w)))
    elif scheme == "kaiming":
        w.normal_(0.0, gain / math.sqrt(fan_in(w)))
    elif scheme == "orthogonal":
        nn.init.orthogonal_(w, gain=gain)
    w.mul_(how.scale)
    if layer.bias is not None:
        if how.bias == "zeros":
            layer.bias.zero_()
        elif how.bias == "normal":
            layer.bias.normal_(0.0, how.bias_std)
