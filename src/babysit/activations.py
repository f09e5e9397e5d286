"""The activation table (LECTURES.md §1): what the spec's `model.activation` may name, what the
models build, the init gains, and what Watch and the doctor need to judge a layer's outputs.
Adding an activation is one entry here.

gain: init std = gain / sqrt(fan_in): sigmoid 1, tanh 5/3, ReLU sqrt(2) (LECTURES.md §1, MM3);
leaky ReLU / PReLU take torch's sqrt(2 / (1 + slope^2)); ELU, GELU, SiLU are ReLU-like: sqrt(2).
bounded: the range a saturating unit lives in (no gradient at its ends); None: unbounded.
can_die: outputs 0 with zero gradient below 0 (plain ReLU); leaky units, ELU, GELU, SiLU do not.
functions: the torch callables that compute the unit, so that Watch also records it when a
forward calls it as a function (F.relu, torch.tanh, x.sigmoid(), ...).
hidden: a hidden-layer unit, offered in model.activation and judged by the activation rules;
softmax (an output normaliser, attention weights) is recorded only: peaked softmaxes are normal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from babysit.registry import Registry

UNBOUNDED_RANGE = (-5.0, 5.0)  # histogram range of unbounded units; values beyond fall in the end bins
LINEAR_GAIN = 1.0  # a layer with no nonlinearity after it (the output layer, a Maxout piece)


@dataclass(frozen=True)
class Activation:
    name: str
    module: Optional[type]  # what model.activation builds; None: watched only (Maxout is a layer kind)
    gain: float = LINEAR_GAIN
    bounded: Optional[tuple[float, float]] = None
    can_die: bool = False
    functions: tuple = ()
    hidden: bool = True

    @property
    def value_range(self) -> tuple[float, float]:
        return self.bounded or UNBOUNDED_RANGE


def _functions(*names: str) -> tuple:
    """torch.X, torch.X_, Tensor.X, Tensor.X_ and F.X for each name, where they exist."""
    return tuple(f for n in names for owner in (torch, torch.Tensor, F)
                 for f in (getattr(owner, n, None), getattr(owner, n + "_", None)) if f is not None)


ACTIVATIONS: Registry[Activation] = Registry("activation")
for _a in (Activation("sigmoid", nn.Sigmoid, bounded=(0.0, 1.0), functions=_functions("sigmoid")),
           Activation("tanh", nn.Tanh, 5.0 / 3.0, bounded=(-1.0, 1.0), functions=_functions("tanh")),
           Activation("relu", nn.ReLU, math.sqrt(2.0), can_die=True, functions=_functions("relu")),
           Activation("leaky_relu", nn.LeakyReLU, nn.init.calculate_gain("leaky_relu", 0.01),
                      functions=_functions("leaky_relu")),
           Activation("prelu", nn.PReLU, nn.init.calculate_gain("leaky_relu", 0.25),  # PReLU starts at 0.25
                      functions=_functions("prelu")),
           Activation("elu", nn.ELU, math.sqrt(2.0), functions=_functions("elu")),
           Activation("gelu", nn.GELU, math.sqrt(2.0), functions=_functions("gelu")),
           Activation("silu", nn.SiLU, math.sqrt(2.0), functions=_functions("silu")),
           Activation("maxout", None),  # babysit's Maxout block: each piece is linear
           Activation("softmax", nn.Softmax, bounded=(0.0, 1.0), functions=_functions("softmax"), hidden=False)):
    ACTIVATIONS.register(_a.name, _a)
CHOICES = tuple(n for n, a in ACTIVATIONS.items() if a.module is not None and a.hidden)  # model.activation
# What Watch's function mode looks up for every call of a sampled forward: callable -> kind.
FUNCTION_KINDS = {f: n for n, a in ACTIVATIONS.items() for f in a.functions}


def gain(name: str) -> float:
    return LINEAR_GAIN if name == "linear" else ACTIVATIONS[name].gain


def kind_of(module: nn.Module) -> Optional[str]:
    """The name Watch records a module under: its own `watch_kind` (babysit's Maxout; a user's
    nonlinearity opts in the same way), else the entry whose torch module it is."""
    own = getattr(module, "watch_kind", None)
    if isinstance(own, str):
        return own
    return next((n for n, a in ACTIVATIONS.items() if a.module is not None and isinstance(module, a.module)), None)


def judged(kind: str) -> bool:
    """Whether the activation rules judge a recorded kind (hidden units, not softmax outputs)."""
    return lookup(kind).hidden


def lookup(kind: str) -> Activation:
    """The entry of a recorded kind; a user's own kind is an unbounded unit that cannot die."""
    return ACTIVATIONS[kind] if kind in ACTIVATIONS else Activation(kind, None)
