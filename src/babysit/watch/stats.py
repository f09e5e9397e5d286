"""The numbers practitioners look at (LECTURES.md §3), computed on the device without a host sync.

Each function returns one flat tensor (a fixed order of named scalars, then a histogram), so a
flush can stack everything sampled since the last one and fetch it in a single transfer.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from babysit.activations import lookup

BINS = 40
# Saturation: |tanh| > 0.97 (LECTURES.md §3). A unit is dead when |tanh| > 0.99 on every example
# of the batch (MM3's white column). Other bounded units are mapped onto tanh's [-1, 1] first.
SATURATED = 0.97
DEAD = 0.99
GRAD_RANGE = 4.0  # gradient histograms span +-4 standard deviations of that gradient

ACT_FIELDS = ("mean", "std", "saturated", "zero", "dead")
ACT_GRAD_FIELDS = ("grad_mean", "grad_std")
PARAM_FIELDS = ("grad_mean", "grad_std", "data_std", "grad_data", "update_data", "norm")
# The model's input, per feature (the checklist's data check, on one batch): the mean |mean| / std
# over features that vary, the ratio of the largest feature std to the smallest, and the count.
INPUT_FIELDS = ("mean_abs_over_std", "std_spread", "features")


# Histogram shares are rounded to HIST_DECIMALS on the device (float64), so the record's lines stay
# short without a Python round() per number (40 bins x every layer and parameter of every sample).
HIST_DECIMALS = 6


def _binned(x: torch.Tensor, row: torch.Tensor, rows: int, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Counts (rows, bins) of the values x (flat) into fixed bins per row (row: each value's row
    index), in a single bincount; values beyond the range fall in the end bins, NaN in none."""
    idx = ((x.clamp(lo, hi) - lo) * (bins / (hi - lo))).long().clamp_(0, bins - 1)
    idx = torch.where(torch.isnan(x), bins, idx)  # NaN goes to an extra bin, dropped below
    idx += row * (bins + 1)
    return torch.bincount(idx, minlength=rows * (bins + 1)).view(rows, bins + 1)[:, :bins]


def _shares(counts: torch.Tensor, n) -> torch.Tensor:
    scale = 10.0 ** HIST_DECIMALS
    return torch.round(counts.double() / n * scale) / scale


def _hists(x: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """One fixed-bin histogram per row of x (layers, values): shares of the row's values."""
    rows = x.shape[0]
    row = torch.arange(rows, device=x.device)[:, None].expand(x.shape).reshape(-1)
    return _shares(_binned(x.reshape(-1), row, rows, lo, hi, bins), x.shape[1])


def _unit_share(mask: torch.Tensor) -> torch.Tensor:
    """mask: (layers, examples, units, ...). Units are dim 2 (features, or a conv map's channels);
    the share of units for which the mask holds on every example (and position)."""
    agree = mask.all(1)
    agree = agree.flatten(2).all(2) if agree.ndim > 2 else agree
    return agree.float().mean(1)


@torch.no_grad()
def activation_stats(h: torch.Tensor, kind: str, bins: int = BINS) -> torch.Tensor:
    """h: (layers, examples, units, ...), layers of one kind and shape stacked so that a sample
    costs the same few ops for five layers as for one. One row per layer: ACT_FIELDS, histogram."""
    h = h.detach().float()
    flat = h.flatten(1)
    nan = torch.full((h.shape[0],), math.nan, device=h.device)
    act = lookup(kind)
    if act.bounded:
        lo, hi = act.bounded
        z = (flat if (lo, hi) == (-1.0, 1.0) else (2 * flat - (lo + hi)) / (hi - lo)).abs()
        saturated = (z > SATURATED).float().mean(1)
        dead = _unit_share((z > DEAD).view(h.shape))
        zero = nan
    else:
        # zero: share in the flat (ReLU) or negative (leaky, ELU, GELU, SiLU) regime. Only units
        # that can die (plain ReLU) are counted as dead: the others still pass a gradient there.
        inactive = h <= 0
        saturated = nan
        zero = inactive.flatten(1).float().mean(1)
        dead = _unit_share(inactive) if act.can_die else nan
    std, mean = torch.std_mean(flat, dim=1)
    head = torch.stack([mean, std, saturated, zero, dead], dim=1)
    return torch.cat([head, _hists(flat, *act.value_range, bins)], dim=1)


@torch.no_grad()
def gradient_stats(g: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """g: (layers, ...) stacked gradients of same-shaped layers. Histograms in std units."""
    flat = g.detach().float().flatten(1)
    std, mean = torch.std_mean(flat, dim=1)
    scaled = flat / std.clamp_min(1e-30)[:, None]
    return torch.cat([torch.stack([mean, std], dim=1), _hists(scaled, -GRAD_RANGE, GRAD_RANGE, bins)], dim=1)


@torch.no_grad()
def input_stats(x: torch.Tensor, axis: int) -> torch.Tensor:
    """INPUT_FIELDS of a batch, features along `axis` (a channel for images, the last axis else),
    statistics over every other axis. Masks instead of boolean indexing: no host sync."""
    x = x.detach().float().movedim(axis, -1)
    flat = x.reshape(-1, x.shape[-1])
    std, mean = torch.std_mean(flat, dim=0)
    live = std > 0  # a constant feature (a blank border pixel) has no scale to judge
    count = live.sum().clamp_min(1)
    off_centre = torch.where(live, mean.abs() / std.clamp_min(1e-30), 0.0).sum() / count
    spread = torch.where(live, std, 0.0).max() / torch.where(live, std, math.inf).min().clamp_min(1e-30)
    return torch.stack([off_centre, torch.where(live.any(), spread, 1.0), torch.tensor(float(x.shape[-1]),
                                                                                       device=x.device)])


class ParameterStats:
    """Per-parameter statistics for all parameters at once. The gradients, weights and updates of
    all parameters (and their squares) are laid side by side in one (6, n) float64 buffer and
    summed per parameter through one cumulative sum, and the gradient histograms of all weight
    matrices come from one bincount: a few dozen ops per sample however many tensors the model
    has (one op per tensor per statistic dominated a small model's sampled step). float64:
    E[x^2] - E[x]^2 keeps a BatchNorm gain's small spread.

    grad:data = std(grad) / std(w); update:data = log10(std(applied update) / std(w)), with the
    update read off the weights themselves, so it is right for Adam and momentum too. Gradient
    histograms (in std units) for weight matrices and kernels only, as MM3 plots them."""

    G, G2, W, W2, U, U2 = range(6)  # the buffer's rows

    def __init__(self, params: list[torch.Tensor], bins: int = BINS):
        self.params, self.bins = params, bins
        device = params[0].device
        sizes = torch.tensor([p.numel() for p in params], device=device)
        self.last = sizes.cumsum(0) - 1  # index of each segment's last element
        self.count = sizes.double()
        self.segment = torch.repeat_interleave(torch.arange(len(params), device=device), sizes)
        self.matrix = torch.tensor([p.ndim >= 2 for p in params], device=device)
        # Reused buffers: a fresh large tensor per op costs page faults on the CPU allocator.
        n = int(sizes.sum())
        self._buf = torch.empty(6, n, dtype=torch.float64, device=device)
        self._run = torch.empty_like(self._buf)

    def flat(self, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        if out is None:
            out = torch.empty_like(self._buf[0])
        return torch.cat([p.detach().reshape(-1) for p in self.params], out=out)

    @torch.no_grad()
    def __call__(self, before: torch.Tensor) -> torch.Tensor:
        """One row per parameter: PARAM_FIELDS, then the gradient histogram. `before`: flat()
        taken before the optimizer step."""
        b = self._buf
        torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1)
                   for p in self.params], out=b[self.G])
        self.flat(out=b[self.W])
        torch.sub(b[self.W], before, out=b[self.U])
        torch.mul(b[0::2], b[0::2], out=b[1::2])
        running = torch.cumsum(b, 1, out=self._run)[:, self.last]
        sums = torch.diff(running, dim=1, prepend=running.new_zeros(6, 1))  # (6, parameters)
        mean = sums[0::2] / self.count
        var = (sums[1::2] - self.count * mean * mean) / (self.count - 1).clamp_min(1)
        g_std, w_std, u_std = var.clamp_min(0).sqrt()
        self.grad_norm = sums[self.G2].sum().sqrt()  # global gradient norm, from the sums at hand
        norm = sums[self.W2].sqrt()
        nan = torch.full_like(w_std, math.nan)
        safe = w_std.clamp_min(1e-30)
        grad_data = torch.where(w_std > 0, g_std / safe, nan)
        update_data = torch.where((w_std > 0) & (u_std > 0), torch.log10(u_std.clamp_min(1e-30) / safe), nan)
        scale = g_std.float().clamp_min(1e-30)
        counts = _binned(b[self.G].float() / scale[self.segment], self.segment, len(self.params),
                         -GRAD_RANGE, GRAD_RANGE, self.bins)
        hists = torch.where(self.matrix[:, None], _shares(counts, self.count[:, None]), math.nan)
        head = torch.stack([mean[0], g_std, w_std, grad_data, update_data, norm], dim=1)
        return torch.cat([head, hists], dim=1)


def unpack(row: list[float], fields: tuple[str, ...]) -> dict:
    """A fetched row back into named numbers plus its histogram (NaN becomes None for JSON)."""
    named = {f: (None if v != v else v) for f, v in zip(fields, row)}
    hist = row[len(fields):]
    # a histogram is all NaN (none: a 1-D parameter, a layer without gradient) or all numbers
    named["hist"] = [None] * len(hist) if hist and hist[0] != hist[0] else hist
    return named
