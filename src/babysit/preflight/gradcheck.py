"""Gradient checking as practitioners do it (LF, L6 notes): centred differences in float64,
compared with autograd by relative error, for a module's inputs and every parameter.

    report = babysit.gradcheck(MyLayer(4, 3), torch.randn(8, 4))
    print(report)            # per-tensor max relative error and a verdict
    assert report.ok

A scalar f = sum(R * module(x)) with a fixed random R is differentiated, so one backward pass
gives every analytic gradient; each numeric one costs two forward passes, so at most `samples`
coordinates per tensor are checked (chosen at random, with a fixed seed).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

EPS = 1e-6  # LECTURES.md §1: centred difference with eps ~ 1e-6
# Relative-error verdicts (L6 notes): ~1e-7 and below fine; up to 1e-4 suspicious unless the
# function has kinks (ReLU, max); 1e-2 or worse is a wrong gradient.
FINE, SUSPICIOUS = 1e-7, 1e-4


def verdict(rel_error: float, kinks: bool = False) -> str:
    if rel_error <= FINE:
        return "fine"
    if rel_error <= SUSPICIOUS:
        return "fine (kinks)" if kinks else "suspicious"
    if rel_error < 1e-2 and kinks:
        return "suspicious"
    return "wrong"


@dataclass
class TensorCheck:
    name: str
    checked: int
    max_rel_error: float
    verdict: str


@dataclass
class GradcheckReport:
    module: str
    tensors: list[TensorCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.verdict.startswith("fine") for t in self.tensors)

    def worst(self) -> TensorCheck:
        return max(self.tensors, key=lambda t: t.max_rel_error)

    def __str__(self) -> str:
        lines = [f"gradient check of {self.module}: {'ok' if self.ok else 'FAILED'}"]
        for t in self.tensors:
            lines.append(f"  {t.name:<24} {t.checked:>4} coords  max rel error {t.max_rel_error:.2e}  {t.verdict}")
        return "\n".join(lines)


TINY = 1e-6  # a coordinate whose gradient is a millionth of its tensor's largest: roundoff, not signal
# One-sided differences of a smooth function differ by about eps * f'' (1e-6 of f' at eps 1e-6);
# across a kink they differ by the jump in slope, of the order of f' itself. 1e-3 sits between.
KINK = 1e-3


def _rel_error(a: torch.Tensor, n: torch.Tensor, tensor_scale: float, roundoff: float) -> torch.Tensor:
    """|a - n| / max(|a|, |n|), the practitioners' relative error. A centred difference cannot be
    trusted closer than its roundoff (float64 eps * |f| / eps), so that much difference is not
    counted, and near-zero coordinates are measured against TINY times the tensor's gradient
    scale instead of against themselves (both zero counts as agreement)."""
    scale = torch.maximum(torch.maximum(a.abs(), n.abs()), torch.full_like(a, TINY * tensor_scale))
    diff = ((a - n).abs() - roundoff).clamp_min(0)
    return torch.where(scale > 0, diff / scale.clamp_min(1e-300), torch.zeros_like(scale))


@torch.no_grad()
def _numeric(f, tensor: torch.Tensor, coords: torch.Tensor, eps: float, base: float,
             roundoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred differences at `coords`, and which of them see a smooth function: where the forward
    and backward one-sided differences disagree by more than KINK of their size (and more than
    roundoff), the step crossed a kink (a ReLU or max switching), and the centred difference
    there measures the kink, not the derivative (the L6 notes' "kinks in the objective"); such
    coordinates are left out: their numeric gradient is not exact."""
    flat = tensor.view(-1)
    out = torch.empty(len(coords), dtype=torch.float64)
    smooth = torch.ones(len(coords), dtype=torch.bool)
    for k, i in enumerate(coords.tolist()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
        forward, backward = (plus - base) / eps, (base - minus) / eps
        smooth[k] = abs(forward - backward) <= KINK * max(abs(forward), abs(backward)) + 2 * roundoff
    return out, smooth


def gradcheck(module: nn.Module, *inputs: torch.Tensor, eps: float = EPS, samples: int = 30,
              seed: int = 0, kinks: bool | None = None) -> GradcheckReport:
    """Check the module's gradients w.r.t. its floating inputs and parameters. The module is
    copied to float64 on the CPU in eval mode (dropout off, BatchNorm on running statistics);
    the original is not touched. kinks: allow the looser verdict for ReLU/max-like functions
    (default: guessed from the module's children)."""
    if not inputs:
        raise ValueError("gradcheck needs at least one input tensor, e.g. gradcheck(layer, torch.randn(8, 4))")
    m = copy.deepcopy(module).double().cpu().eval()
    # integer inputs (token indices into an embedding) stay integers: only floats are differentiated
    xs = [x.detach().double().cpu().clone().requires_grad_() if x.is_floating_point() else x.detach().cpu()
          for x in inputs]
    if kinks is None:
        kinks = any(isinstance(c, (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.MaxPool2d, nn.Hardtanh))
                    or "max" in type(c).__name__.lower() for c in m.modules())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        probe = m(*xs)
    if not isinstance(probe, torch.Tensor):
        raise ValueError(f"gradcheck needs a module returning one tensor, got {type(probe).__name__}")
    weights = torch.randn(probe.shape, generator=g, dtype=torch.float64)

    def f() -> float:
        return float((m(*xs) * weights).sum())

    loss = (m(*xs) * weights).sum()
    base = float(loss.detach())
    roundoff = 4 * torch.finfo(torch.float64).eps * (abs(base) + 1.0) / eps
    named = [(f"input {i}", x) for i, x in enumerate(xs) if x.requires_grad]
    named += [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    analytic = torch.autograd.grad(loss, [t for _, t in named], allow_unused=True)
    report = GradcheckReport(type(module).__name__)
    for (name, tensor), grad in zip(named, analytic):
        grad = torch.zeros_like(tensor) if grad is None else grad
        n = min(samples, tensor.numel())
        coords = torch.randperm(tensor.numel(), generator=g)[:n]
        numeric, smooth = _numeric(f, tensor.data, coords, eps, base, roundoff)
        if not bool(smooth.any()):  # every step crossed a kink: nothing this tensor can be judged on
            continue
        scale = float(grad.abs().max()) if grad.numel() else 0.0
        errors = _rel_error(grad.reshape(-1)[coords].double(), numeric, scale, roundoff)
        err = float(errors[smooth].max())
        report.tensors.append(TensorCheck(name, int(smooth.sum()), err, verdict(err, kinks)))
    return report
