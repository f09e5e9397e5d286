"""Models from the spec: the makemore MLP (optional character embedding) and a small CNN.

Layers carry readable names (fc1, bn1, act1, ..., out) because every diagnostic names its layer.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from babysit.activations import ACTIVATIONS
from babysit.data import Dataset
from babysit.errors import DataError
from babysit.nn.blocks import DropConnectLinear, FractionalMaxPool2d, Maxout
from babysit.nn.init import init_layer
from babysit.nn.lsuv import lsuv_
from babysit.nn.preprocess import Preprocess
from babysit.spec import ModelSpec, Spec

LSUV_BATCH = 256  # training examples LSUV measures on (Mishkin & Matas use one mini-batch)


def _hidden_block(layers: OrderedDict, i: int, linear: nn.Module, norm: nn.Module | None,
                  spec: ModelSpec) -> None:
    conv = isinstance(linear, nn.Conv2d)
    layers[f"conv{i}" if conv else f"fc{i}"] = linear
    if norm is not None:
        layers[f"bn{i}"] = norm
    if not isinstance(linear, Maxout):  # the max over pieces is Maxout's nonlinearity
        layers[f"act{i}"] = ACTIVATIONS[spec.activation].module()
    if spec.dropout > 0 and not conv:
        layers[f"drop{i}"] = nn.Dropout(spec.dropout)


def _fc(spec: ModelSpec, width: int, units: int, bias: bool) -> nn.Module:
    """A hidden fully connected layer of the kind model.layer names (LECTURES.md §1)."""
    if spec.layer == "maxout":
        return Maxout(width, units, pieces=spec.maxout_pieces, bias=bias)
    if spec.layer == "dropconnect":
        return DropConnectLinear(width, units, p=spec.dropconnect_p, bias=bias)
    return nn.Linear(width, units, bias=bias)


def _use_bias(spec: ModelSpec, norm_follows: bool) -> bool:
    # A bias in front of a BatchNorm is subtracted right away: its gradient is zero (LECTURES.md §1).
    return (not norm_follows) if spec.bias == "auto" else spec.bias


def _preprocess(spec: Spec, data: Dataset) -> OrderedDict:
    d = spec.data
    if d.preprocess == "none" or not data.train.x.dtype.is_floating_point:
        return OrderedDict()
    return OrderedDict(prep=Preprocess.fit(data.train.x, d.preprocess, d.pca_components, d.whiten_eps))


def _input_shape(layers: OrderedDict, data: Dataset) -> tuple:
    """One example's shape as the first weight layer sees it: PCA changes it to (k,)."""
    return layers["prep"].out_shape if "prep" in layers else tuple(data.input_shape)


def build_mlp(spec: Spec, data: Dataset) -> nn.Sequential:
    m = spec.model
    layers = _preprocess(spec, data)
    if m.embed_dim:  # names: one embedding per character, and the characters are the classes
        layers["embed"] = nn.Embedding(data.num_classes, m.embed_dim)
        width = m.embed_dim * math.prod(data.input_shape)
    else:
        width = math.prod(_input_shape(layers, data))
    layers["flatten"] = nn.Flatten()
    bias = _use_bias(m, m.batchnorm)
    for i, h in enumerate(m.hidden, start=1):
        norm = nn.BatchNorm1d(h, momentum=m.bn_momentum) if m.batchnorm else None
        _hidden_block(layers, i, _fc(m, width, h, bias), norm, m)
        width = h
    layers["out"] = nn.Linear(width, data.num_classes, bias=_use_bias(m, m.output_batchnorm))
    if m.output_batchnorm:
        layers["out_bn"] = nn.BatchNorm1d(data.num_classes, momentum=m.bn_momentum)
    return nn.Sequential(layers)


def build_cnn(spec: Spec, data: Dataset) -> nn.Sequential:
    """[conv -> BN -> act -> pool(2)] per entry of channels, then [fc -> act] per hidden, then out."""
    m = spec.model
    if len(data.input_shape) != 3:
        raise DataError(f"model.kind 'cnn' needs image inputs (C, H, W), got shape {data.input_shape}")
    layers = _preprocess(spec, data)
    if len(_input_shape(layers, data)) != 3:
        raise DataError(f"data.preprocess '{spec.data.preprocess}' turns each image into a flat vector "
                         f"of {_input_shape(layers, data)[0]}, which model.kind 'cnn' cannot take; use "
                         "zca (keeps the image shape) or model.kind 'mlp'")
    c, h, w = data.input_shape
    bias = _use_bias(m, m.batchnorm)
    for i, out_c in enumerate(m.channels, start=1):
        norm = nn.BatchNorm2d(out_c, momentum=m.bn_momentum) if m.batchnorm else None
        _hidden_block(layers, i, nn.Conv2d(c, out_c, m.kernel_size, padding=m.kernel_size // 2, bias=bias),
                      norm, m)
        pooled = _pool(m, h, w)
        if pooled is not None:
            layers[f"pool{i}"], (h, w) = pooled
        c = out_c
    layers["flatten"] = nn.Flatten()
    width = c * h * w
    for j, units in enumerate(m.hidden, start=len(m.channels) + 1):
        _hidden_block(layers, j, _fc(m, width, units, True), None, m)
        width = units
    layers["out"] = nn.Linear(width, data.num_classes)
    return nn.Sequential(layers)


def _pool(m: ModelSpec, h: int, w: int) -> tuple[nn.Module, tuple[int, int]] | None:
    """The pooling after a conv block and the map size after it; None once the map is too small
    to pool (a side would reach 0)."""
    if m.pool == "fractional":
        # torch's output size: int(side * ratio) (FractionalMaxPool2d with output_ratio)
        out = int(h * m.fractional_ratio), int(w * m.fractional_ratio)
        return (FractionalMaxPool2d(m.fractional_ratio), out) if min(out) >= 1 else None
    if min(h, w) < 2:
        return None
    return (nn.MaxPool2d(2) if m.pool == "max" else nn.AvgPool2d(2)), (h // 2, w // 2)


def init_model(model: nn.Module, spec: ModelSpec) -> None:
    """Hidden layers get spec.init.hidden with their activation's gain; the output layer gets
    spec.init.output with gain 1. With an output BatchNorm, the output scale goes to its gamma
    (MM3's deep net: gamma *= 0.1), since the norm would undo a scaled weight."""
    out = model.out
    out_bn = getattr(model, "out_bn", None)
    for name, layer in model.named_children():
        if isinstance(layer, Maxout):  # each piece is a linear map: gain 1
            init_layer(layer.linear, spec.init.hidden, "linear")
        elif isinstance(layer, (nn.Linear, nn.Conv2d)) and layer is not out:
            init_layer(layer, spec.init.hidden, spec.activation)
    out_init = spec.init.output
    if out_bn is not None:
        init_layer(out, out_init.model_copy(update={"scale": 1.0}), "linear")
        with torch.no_grad():
            out_bn.weight.mul_(out_init.scale)
    else:
        init_layer(out, out_init, "linear")


def lsuv_batch(spec: Spec, data: Dataset) -> torch.Tensor:
    """The training examples LSUV measures on: a fixed draw from the spec's seed."""
    g = torch.Generator().manual_seed(spec.seed)
    return data.train.x[torch.randperm(len(data.train), generator=g)[:LSUV_BATCH]]


def build_model(spec: Spec, data: Dataset, init: bool = True) -> nn.Sequential:
    """init=False: a checkpoint's weights are loaded next, so the init (and LSUV's forward
    passes) would be thrown away; the preprocessing is still fitted (it sets the input shape)."""
    model = build_mlp(spec, data) if spec.model.kind == "mlp" else build_cnn(spec, data)
    if not init:
        return model
    init_model(model, spec.model)
    if spec.model.init.lsuv:  # replaces the weight init above: orthogonal, then unit output std
        lsuv_(model, lsuv_batch(spec, data))
    return model
