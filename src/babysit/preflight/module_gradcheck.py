"""Check 4 of the checklist: a gradient check of every module whose backward torch did not write
(LECTURES.md §2 item 7; verdicts in preflight/gradcheck.py). torch's own modules are tested by
torch; a user's layer, a custom autograd.Function or one of babysit's blocks is where a wrong
gradient hides. Each is checked on the inputs it really receives, captured on a small batch.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from babysit.preflight.checks import CheckResult, Setup, check
from babysit.preflight.gradcheck import FINE, SUSPICIOUS, gradcheck

PROBE_EXAMPLES = 4  # inputs per module: each numeric derivative costs two forward passes


def is_stock(module: nn.Module) -> bool:
    return type(module).__module__.split(".")[0] == "torch"


def _captured_inputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, tuple]:
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}

    def keep(name: str):
        def hook(module, inputs, output) -> None:  # returns None: the output is left alone
            seen.setdefault(name, tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in inputs))
        return hook

    hooks = [modules[n].register_forward_hook(keep(n)) for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


@check("gradcheck", order=4)
def check_gradients(setup: Setup) -> CheckResult:
    model = copy.deepcopy(setup.model).eval()
    custom = [n for n, m in model.named_modules() if not is_stock(m)]
    expected = (f"max relative error <= {FINE:g} (<= {SUSPICIOUS:g} with kinks) in float64 centred "
                "differences, for every module that is not a stock torch module")
    if not custom:
        return CheckResult("gradcheck", "pass", {"custom_modules": 0}, expected,
                           "every module is a stock torch module (torch tests their gradients)")
    x, _ = setup.examples(PROBE_EXAMPLES)
    inputs = _captured_inputs(model, custom, x)
    modules = dict(model.named_modules())
    measured, wrong, suspicious, skipped = {}, [], [], []
    for name in custom:
        args = inputs.get(name)
        if not args or not all(isinstance(a, torch.Tensor) for a in args):
            skipped.append(name or "<model>")
            continue
        report = gradcheck(modules[name], *args)
        if not report.tensors:
            continue
        worst = report.worst()
        label = name or "<model>"
        measured[label] = f"{worst.max_rel_error:.1e} ({worst.name}: {worst.verdict})"
        if not report.ok:
            (wrong if worst.verdict == "wrong" else suspicious).append(f"{label}.{worst.name}")
    if skipped:
        measured["skipped (not called, or non-tensor inputs)"] = ", ".join(skipped)
    if wrong:
        return CheckResult("gradcheck", "fail", measured, expected,
                           f"wrong gradients in {', '.join(wrong)}: the backward disagrees with the forward; "
                           "fix the custom backward (or drop it and let autograd derive it)")
    if suspicious:
        return CheckResult("gradcheck", "warn", measured, expected,
                           f"suspicious gradients in {', '.join(suspicious)}: fine only if the function has kinks "
                           "(ReLU, max); otherwise look at its backward")
    return CheckResult("gradcheck", "pass", measured, expected)
