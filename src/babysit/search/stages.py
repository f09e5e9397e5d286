"""Coarse to fine (LECTURES.md §4): the next stage's ranges are drawn around the best trials of
the last one, in log space for log parameters; a best value at the edge of its range widens that
side instead ("good values belong in the middle")."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from babysit.spec import INT_TYPES, ParamSpec

# Calibration of the narrowing (fractions of the current range's width, in log space for log
# parameters). A best value within the outer tenth of the range counts as "at the edge".
EDGE_FRACTION = 0.1
# The kept trials' span is padded by a tenth of the range on each side (their neighbourhood).
PAD_FRACTION = 0.1
# The next range is at least a fifth of the current one, so one lucky trial cannot collapse it.
MIN_WIDTH_FRACTION = 0.2

Result = tuple[dict, float]  # a finished trial: its params and its validation loss


@dataclass
class Narrowed:
    space: dict[str, ParamSpec]
    notes: list[str] = field(default_factory=list)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _to(p: ParamSpec, v: float) -> float:
    return math.log10(v) if p.log else float(v)


def _back(p: ParamSpec, x: float) -> float:
    return 10.0 ** x if p.log else x


def edge_side(p: ParamSpec, value: float) -> Optional[str]:
    """'low' or 'high' when `value` lies within the outer EDGE_FRACTION of p's range, else None."""
    lo, hi = _to(p, p.low), _to(p, p.high)
    x, width = _to(p, value), hi - lo
    return "low" if x - lo <= EDGE_FRACTION * width else "high" if hi - x <= EDGE_FRACTION * width else None


def narrow_range(name: str, p: ParamSpec, top: list[float], best: float,
                 valid: Optional[Callable[[str, float], bool]] = None) -> tuple[ParamSpec, list[str]]:
    """The next stage's range for one numeric parameter, and what was said about it.

    The range spans the kept trials (padded, at least MIN_WIDTH_FRACTION of the old width), inside
    the old range; when the best value sits at an edge, that side moves past the best value by half
    the range's width, beyond the old bound: the widening the lectures ask for."""
    lo, hi = _to(p, p.low), _to(p, p.high)
    width = hi - lo
    xs = [_to(p, v) for v in top]
    a, b = min(xs) - PAD_FRACTION * width, max(xs) + PAD_FRACTION * width
    if b - a < MIN_WIDTH_FRACTION * width:
        c = (a + b) / 2
        a, b = c - MIN_WIDTH_FRACTION * width / 2, c + MIN_WIDTH_FRACTION * width / 2
    if a < lo:
        a, b = lo, b + (lo - a)
    if b > hi:
        a, b = max(a - (b - hi), lo), hi
    notes = []
    xb = _to(p, best)
    scale = " (log scale)" if p.log else ""
    side = edge_side(p, best)
    if side is not None:
        half = (b - a) / 2  # reach as far past the best value as the kept trials spread around it
        x = xb - half if side == "low" else xb + half
        end = _back(p, x)
        if p.type in INT_TYPES:
            end = max(math.floor(end), 1 if p.log else -math.inf) if side == "low" else math.ceil(end)
        where = f"{name}: best {_fmt(best)} sits at the {side} edge of [{_fmt(p.low)}, {_fmt(p.high)}]{scale}"
        if valid is not None and not valid(name, end):
            notes.append(f"{where}, but the spec rejects {_fmt(end)}: keeping that bound")
        else:
            a, b = (_to(p, end), b) if side == "low" else (a, _to(p, end))
            notes.append(f"{where}; widening that side to {_fmt(end)}")
    low, high = _back(p, a), _back(p, b)
    if p.type in INT_TYPES:
        low, high = math.floor(low + 1e-9), math.ceil(high - 1e-9)
        high = max(high, low + 1)
    return ParamSpec(type=p.type, low=low, high=high), notes


def narrow(space: dict[str, ParamSpec], results: list[Result], keep: float,
           valid: Optional[Callable[[str, float], bool]] = None, min_keep: int = 1) -> Narrowed:
    """The next stage's space from the last stage's finished trials (lower loss is better): each
    range spans the best `keep` fraction of them (at least `min_keep`; padded), and widens at an
    edge."""
    finished = sorted((r for r in results if math.isfinite(r[1])), key=lambda r: r[1])
    if not finished:
        return Narrowed(dict(space), ["no trial of the last stage finished: keeping its ranges "
                                      "(lower the learning-rate range if every trial diverged)"])
    top = finished[:max(1, min_keep, math.ceil(keep * len(finished)))]
    best = finished[0][0]
    out = Narrowed({})
    for name, p in space.items():
        if p.type == "categorical":
            kept = [c for c in p.choices if any(params[name] == c for params, _ in top)]
            out.space[name] = ParamSpec(type="categorical", choices=kept)
            if len(kept) < len(p.choices):
                out.notes.append(f"{name}: keeping {kept} of {p.choices}")
            continue
        out.space[name], notes = narrow_range(name, p, [params[name] for params, _ in top], best[name], valid)
        out.notes.extend(notes)
    return out
