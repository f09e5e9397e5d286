"""Models from the spec: the makemore MLP (optional character embedding), a small CNN, for
sequences (C, L) a 1-D CNN and a GRU (MNIST-1D's models), and a user's own network (model.kind
python: model.factory(**model.args) returns the nn.Module).

Layers carry readable names (fc1, bn1, act1, ..., out) because every diagnostic names its layer;
a user's network keeps its own names.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from babysit import factories
from babysit.activations import ACTIVATIONS, kind_of
from babysit.data import Dataset
from babysit.errors import DataError, SpecError
from babysit.losses import build_loss
from babysit.nn.blocks import DropConnectLinear, FractionalMaxPool2d, Maxout
from babysit.nn.init import init_layer
from babysit.nn.lsuv import lsuv_
from babysit.nn.preprocess import Preprocess
from babysit.spec import LayerInit, ModelSpec, Spec

LSUV_BATCH = 256  # training examples LSUV measures on (Mishkin & Matas use one mini-batch)
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # what model.init reaches in a user's network
STOCK_HEAD = ("out", "out_bn")  # the head of babysit's own models


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
    x = data.train.in_memory().x  # a streamed split: fitted on a sample
    if d.preprocess == "none" or not x.dtype.is_floating_point:
        return OrderedDict()
    return OrderedDict(prep=Preprocess.fit(x, d.preprocess, d.pca_components, d.whiten_eps))


def num_outputs(spec: Spec, data: Dataset) -> int:
    """The output layer's width: one logit per class, or one output per target value (loss: mse,
    bce on real-valued targets)."""
    return build_loss(spec.loss).outputs(data.train.in_memory(1).y, data.num_classes)


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
    outputs = num_outputs(spec, data)
    layers["out"] = nn.Linear(width, outputs, bias=_use_bias(m, m.output_batchnorm))
    if m.output_batchnorm:
        layers["out_bn"] = nn.BatchNorm1d(outputs, momentum=m.bn_momentum)
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
    for i, out_c in enumerate(m.channels, start=1):
        norm = nn.BatchNorm2d(out_c, momentum=m.bn_momentum) if m.batchnorm else None
        _hidden_block(layers, i, nn.Conv2d(c, out_c, m.kernel_size, padding=m.kernel_size // 2, bias=bias),
                      norm, m)
        pooled = _pool(m, h, w)
        if pooled is not None:
            layers[f"pool{i}"], (h, w) = pooled
        c = out_c
    return _head(layers, c * h * w, m, len(m.channels) + 1, num_outputs(spec, data))


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
    return _head(layers, c * length, m, len(m.channels) + 1, num_outputs(spec, data))


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
    return _head(layers, length * m.gru_hidden * (2 if m.bidirectional else 1), m, 1, num_outputs(spec, data))




def _through_prep(module: nn.Module, args: tuple) -> tuple:
    """A forward pre-hook: the input passes the network's `prep` layer first (data.preprocess)."""
    return (module.prep(args[0]), *args[1:])


def build_python(spec: Spec, data: Dataset) -> nn.Module:
    """model.factory(**model.args); the factory also gets num_classes (the output width) and
    input_shape (one example's) when it takes them and model.args leaves them out. A
    data.preprocess layer is added to the network as `prep`, run before its forward."""
    m = spec.model
    fn = factories.load(m.factory, "model.factory")
    model = factories.call(fn, m.args, "model.args", num_classes=num_outputs(spec, data),
                           input_shape=tuple(data.input_shape))
    if not isinstance(model, nn.Module):
        raise SpecError(f"model.factory {m.factory} returned {type(model).__name__}; it must return a torch "
                        "nn.Module")
    if not any(True for _ in model.parameters()):
        raise SpecError(f"model.factory {m.factory} returned a network without parameters: nothing to train")
    prep = _preprocess(spec, data)
    if prep:
        if hasattr(model, "prep"):
            raise SpecError(f"data.preprocess adds a layer named 'prep' to the network, and the network of "
                            f"{m.factory} already has an attribute 'prep'; rename it")
        model.add_module("prep", prep["prep"])
        model.register_forward_pre_hook(_through_prep)
    return model


def _check_module(model: nn.Module, head: str | None) -> None:
    if head is not None and head not in dict(model.named_modules()):
        raise SpecError(f"finetune.head: the network has no module {head!r}; its top-level modules: "
                        f"{', '.join(n for n, _ in model.named_children())}")


def output_layer(model: nn.Module, head: str | None = None) -> tuple[str, nn.Module]:
    """(name, module) of the output layer: the last nn.Linear, in definition order, of the whole
    network or of its module `head` (finetune.head)."""
    _check_module(model, head)
    scope = [(n, mod) for n, mod in model.named_modules() if head is None or n == head or n.startswith(head + ".")]
    linears = [(n, mod) for n, mod in scope if isinstance(mod, nn.Linear)]
    if not linears:
        raise SpecError(f"no nn.Linear in {head or 'the network'}: the output layer (model.init.output, the "
                        "output-scale fix, fine-tuning's head) is its last Linear; name the head with finetune.head")
    return linears[-1]


def head_modules(model: nn.Module, spec: Spec) -> tuple[str, ...]:
    """The module names fine-tuning re-initializes: out/out_bn of babysit's models; of a user's
    network, finetune.head or its last Linear."""
    if spec.model.kind != "python":
        return STOCK_HEAD
    _check_module(model, spec.finetune.head)
    return (spec.finetune.head or output_layer(model)[0],)


def _following_activation(model: nn.Module) -> dict[str, str]:
    """Weight layer name -> the activation that comes after it in definition order, before the
    next weight layer ('linear' when none does): its init gain."""
    out, last = {}, None
    for name, mod in model.named_modules():
        if isinstance(mod, WEIGHT_LAYERS):
            last = name
            out[name] = "linear"
        elif last is not None and out[last] == "linear" and kind_of(mod) in ACTIVATIONS:
            out[last] = kind_of(mod)
    return out


def init_python(model: nn.Module, spec: Spec) -> None:
    """model.init on a user's network: init.output on the output layer (its last Linear), init.hidden
    on every other Linear/Conv, each with the gain of the activation that follows it. A group left
    at its defaults keeps the factory's own init, and weight 'auto' keeps the factory's weights
    (scaled by `scale`): the output-scale fix (x 0.01, bias zeros) works on any network."""
    m = spec.model
    default = LayerInit()
    if m.init.hidden == default and m.init.output == default:
        return
    out_name, out = output_layer(model, spec.finetune.head)
    gains = _following_activation(model)
    for name, layer in model.named_modules():
        if not isinstance(layer, WEIGHT_LAYERS):
            continue
        how = m.init.output if layer is out else m.init.hidden
        if how != default:
            init_layer(layer, how, "linear" if layer is out else gains[name], auto="keep")


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
    train = data.train.in_memory()
    return train.x[torch.randperm(len(train), generator=g)[:LSUV_BATCH]]


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "cnn1d": build_cnn1d, "gru": build_gru, "python": build_python}


def build_model(spec: Spec, data: Dataset, init: bool = True) -> nn.Module:
    """init=False: a checkpoint's weights are loaded next, so the init (and LSUV's forward
    passes) would be thrown away; the preprocessing is still fitted (it sets the input shape).
    A user's network (python) is initialized by its factory; model.init then applies on top."""
    model = BUILDERS[spec.model.kind](spec, data)
    if not init:
        return model
    if spec.model.kind == "python":
        init_python(model, spec)
    else:
        init_model(model, spec.model)
    if spec.model.init.lsuv:  # replaces the weight init above: orthogonal, then unit output std
        lsuv_(model, lsuv_batch(spec, data))
    return model
