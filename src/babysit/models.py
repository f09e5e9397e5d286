"""Models from the spec: the makemore MLP (optional character embedding), a small CNN, and for
sequences (C, L) a 1-D CNN and a GRU (MNIST-1D's models).

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
from babysit.nn.blocks import DropConnectLinear, Maxout
from babysit.nn.init import init_layer
from babysit.nn.lsuv import lsuv_
from babysit.nn.preprocess import Preprocess
from babysit.spec import ModelSpec, Spec

LSUV_BATCH = 256  # training examples LSUV measures on (Mishkin & Matas use one mini-batch)


def _hidden_block(layers: OrderedDict, i: int, linear: nn.Module, norm: nn.Module | None,
                  spec: ModelSpec) -> None:
    conv = isinstance(linear, (nn.Conv1d, nn.Conv2d))
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


# What a conv or recurrent model reads: (shape, the preprocessing that keeps that shape)
SHAPES = {"image": ("(C, H, W)", "zca (keeps the image shape)"),
          "sequence": ("(C, L)", "center or standardize (they keep the shape)")}


def _shaped_input(spec: Spec, data: Dataset, layers: OrderedDict, what: str) -> tuple:
    """The input shape after preprocessing, checked to have the dimensions of `what` (a SHAPES key)."""
    kind = spec.model.kind
    shape_name, keeps = SHAPES[what]
    if len(data.input_shape) != len(shape_name.split(",")):
        raise DataError(f"model.kind '{kind}' needs {what} inputs {shape_name}, got shape {data.input_shape}")
    shape = _input_shape(layers, data)
    if len(shape) != len(data.input_shape):
        raise DataError(f"data.preprocess '{spec.data.preprocess}' turns each {what} into a flat vector "
                        f"of {shape[0]}, which model.kind '{kind}' cannot take; use {keeps} or model.kind 'mlp'")
    return shape


def _head(layers: OrderedDict, width: int, spec: ModelSpec, first: int, num_classes: int) -> nn.Sequential:
    """[fc -> act] per entry of model.hidden on the flattened features, then the output layer."""
    layers["flatten"] = nn.Flatten()
    for j, units in enumerate(spec.hidden, start=first):
        _hidden_block(layers, j, _fc(spec, width, units, True), None, spec)
        width = units
    layers["out"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


def build_cnn(spec: Spec, data: Dataset) -> nn.Sequential:
    """[conv -> BN -> act -> pool(2)] per entry of channels, then [fc -> act] per hidden, then out."""
    m = spec.model
    layers = _preprocess(spec, data)
    c, h, w = _shaped_input(spec, data, layers, "image")
    bias = _use_bias(m, m.batchnorm)
    pool = nn.MaxPool2d if m.pool == "max" else nn.AvgPool2d
    for i, out_c in enumerate(m.channels, start=1):
        norm = nn.BatchNorm2d(out_c, momentum=m.bn_momentum) if m.batchnorm else None
        _hidden_block(layers, i, nn.Conv2d(c, out_c, m.kernel_size, padding=m.kernel_size // 2, bias=bias),
                      norm, m)
        if min(h, w) >= 2:
            layers[f"pool{i}"] = pool(2)
            h, w = h // 2, w // 2
        c = out_c
    return _head(layers, c * h * w, m, len(m.channels) + 1, data.num_classes)


POOL1D = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d}


def build_cnn1d(spec: Spec, data: Dataset) -> nn.Sequential:
    """[conv1d (stride) -> BN -> act -> pool(2)] per entry of channels, then [fc -> act] per hidden,
    then out: the sequence twin of build_cnn (MNIST-1D's paper CNN: three stride-2 convs)."""
    m = spec.model
    layers = _preprocess(spec, data)
    c, length = _shaped_input(spec, data, layers, "sequence")
    bias = _use_bias(m, m.batchnorm)
    pad = m.kernel_size // 2
    for i, out_c in enumerate(m.channels, start=1):
        norm = nn.BatchNorm1d(out_c, momentum=m.bn_momentum) if m.batchnorm else None
        conv = nn.Conv1d(c, out_c, m.kernel_size, stride=m.stride, padding=pad, bias=bias)
        _hidden_block(layers, i, conv, norm, m)
        length = (length + 2 * pad - m.kernel_size) // m.stride + 1
        if m.pool1d != "none" and length >= 2:
            layers[f"pool{i}"] = POOL1D[m.pool1d](2)
            length //= 2
        c = out_c
    return _head(layers, c * length, m, len(m.channels) + 1, data.num_classes)


class SequenceGRU(nn.Module):
    """nn.GRU over a batch of sequences (N, C, L), read position by position: returns every
    position's output (N, L, directions x hidden), which the head flattens (MNIST-1D's GRU)."""

    def __init__(self, channels: int, spec: ModelSpec):
        super().__init__()
        self.gru = nn.GRU(channels, spec.gru_hidden, num_layers=spec.gru_layers, batch_first=True,
                          bidirectional=spec.bidirectional, dropout=spec.dropout if spec.gru_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x.transpose(1, 2))  # h0 = zeros
        return out


def build_gru(spec: Spec, data: Dataset) -> nn.Sequential:
    """GRU over the sequence, its outputs at every position flattened, [fc -> act] per hidden, out."""
    m = spec.model
    layers = _preprocess(spec, data)
    c, length = _shaped_input(spec, data, layers, "sequence")
    layers["gru"] = SequenceGRU(c, m)
    return _head(layers, length * m.gru_hidden * (2 if m.bidirectional else 1), m, 1, data.num_classes)


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "cnn1d": build_cnn1d, "gru": build_gru}


def init_model(model: nn.Module, spec: ModelSpec) -> None:
    """Hidden layers get spec.init.hidden with their activation's gain; the output layer gets
    spec.init.output with gain 1; a GRU keeps torch's init (uniform in +-1/sqrt(hidden)). With an
    output BatchNorm, the output scale goes to its gamma (MM3's deep net: gamma *= 0.1), since
    the norm would undo a scaled weight."""
    out = model.out
    out_bn = getattr(model, "out_bn", None)
    for name, layer in model.named_children():
        if isinstance(layer, Maxout):  # each piece is a linear map: gain 1
            init_layer(layer.linear, spec.init.hidden, "linear")
        elif isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)) and layer is not out:
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
    model = BUILDERS[spec.model.kind](spec, data)
    if not init:
        return model
    init_model(model, spec.model)
    if spec.model.init.lsuv:  # replaces the weight init above: orthogonal, then unit output std
        lsuv_(model, lsuv_batch(spec, data))
    return model
