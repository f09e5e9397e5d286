"""Weight init schemes with the gains of LECTURES.md §1: std = gain / sqrt(fan_in). The gains
are the activation table's (babysit/activations.py)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from babysit.activations import gain as activation_gain

if TYPE_CHECKING:
    from babysit.spec import LayerInit


def fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()  # Linear: in_features; Conv: in_channels * kernel area


@torch.no_grad()
def init_layer(layer: nn.Module, how: LayerInit, activation: str, auto: str = "kaiming") -> None:
    """Initialize a Linear/Conv layer's weight and bias as `how` says. auto: what weight 'auto'
    means; 'keep' leaves the weight as it is (a user's network keeps its own init), then scaled."""
    w = layer.weight
    gain = activation_gain(activation)
    scheme = auto if how.weight == "auto" else how.weight
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
