"""Blocks from LECTURES.md §1 that torch itself lacks: Maxout, DropConnect, stochastic depth, and a
fractional max pooling whose evaluation is deterministic (torch's draws a new layout in eval too)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_drop_p(p: float) -> None:
    # p == 1 would divide by 1 - p = 0 in the inverted scaling; NaN fails the comparison too.
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"p must be a probability with 0 <= p < 1, got {p!r}")


class Maxout(nn.Module):
    """max(w1x+b1, ..., wkx+bk) per output unit (Goodfellow et al. 2013).

    L6: no saturation and no dying units, at the price of `pieces` times a Linear's parameters.
    One Linear computes all pieces at once; output unit o takes the max over rows
    o*pieces ... o*pieces + pieces-1 of its weight.
    """

    watch_kind = "maxout"  # the max is the layer's nonlinearity: Watch records its outputs

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True):
        super().__init__()
        _check_size("in_features", in_features)
        _check_size("out_features", out_features)
        if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 2:
            raise ValueError(f"pieces must be an int >= 2 (one piece is just a Linear), got {pieces!r}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x).unflatten(-1, (self.out_features, self.pieces))
        return z.max(dim=-1).values  # gradient goes to the winning piece only

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


class DropConnectLinear(nn.Linear):
    """Linear layer whose weights, not activations, are dropped in training (Wan et al. 2013).

    Training: each weight is kept with probability 1 - p and kept weights are divided by 1 - p
    (inverted scaling, as in inverted dropout), so eval is the plain linear map with no rescaling.
    One mask is drawn per forward call and shared by the whole batch: per-example masks would
    need a weight matrix per example. The bias is never dropped.

    `last_mask` holds the 0/1 mask of the latest training forward (None before one, and after
    an eval forward or with p == 0), so tests and diagnostics can see what was dropped.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True):
        _check_size("in_features", in_features)
        _check_size("out_features", out_features)
        _check_drop_p(p)
        super().__init__(in_features, out_features, bias=bias)  # nn.Linear's init (reset_parameters)
        self.p = float(p)
        self.last_mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            self.last_mask = None
            return F.linear(x, self.weight, self.bias)
        mask = torch.empty_like(self.weight, requires_grad=False).bernoulli_(1.0 - self.p)
        self.last_mask = mask
        return F.linear(x, self.weight * (mask / (1.0 - self.p)), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class StochasticDepth(nn.Module):
    """Residual block whose branch is skipped at random in training (Huang et al. 2016).

    Training: with probability p the branch is not run at all for the whole batch ("batch" mode)
    and the output is x; otherwise x + block(x) / (1 - p), so the expectation equals eval's
    x + block(x). torchvision.ops.stochastic_depth does the same, but torchvision does not
    import beside our torch build, hence this one. Skipping saves the branch's compute; a
    BatchNorm inside it then sees no batch that step.
    """

    def __init__(self, block: nn.Module, p: float = 0.2):
        super().__init__()
        if not isinstance(block, nn.Module):
            raise ValueError(f"block must be an nn.Module (the residual branch), got {type(block).__name__}")
        _check_drop_p(p)
        self.block = block
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x + self.block(x)
        if torch.rand(()).item() < self.p:  # torch's RNG, so torch.manual_seed reproduces it
            return x
        return x + self.block(x) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FractionalMaxPool2d(nn.FractionalMaxPool2d):
    """Fractional max pooling (Graham 2014; L7 lists it among the regularizers): 2x2 max windows
    laid out so that each side shrinks by `output_ratio` (for example 1/sqrt(2)) instead of 2,
    the layout drawn at random per example and channel at every training forward.

    torch's module draws a new layout in eval mode too, so the same image would score differently
    on every evaluation. Here eval uses one fixed layout: the sample u = EVAL_SAMPLE for every
    example and channel (Graham's a_i = ceil(alpha (i + u)) with u fixed), so evaluation is
    deterministic and a checkpoint scores the same after reloading."""

    EVAL_SAMPLE = 0.5  # the middle of torch's sample range [0, 1)

    def __init__(self, output_ratio: float, kernel_size: int = 2):
        if isinstance(output_ratio, bool) or not isinstance(output_ratio, (int, float)) or not 0 < output_ratio < 1:
            raise ValueError(f"output_ratio must lie in (0, 1), got {output_ratio!r}")
        super().__init__(kernel_size, output_ratio=float(output_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        n, c = (1, x.shape[0]) if x.ndim == 3 else x.shape[:2]  # an unbatched (C, H, W) input is one example
        samples = torch.full((n, c, 2), self.EVAL_SAMPLE, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(x, self.kernel_size, output_ratio=self.output_ratio, _random_samples=samples)
