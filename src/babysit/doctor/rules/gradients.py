"""Rules on gradients and updates (LECTURES.md §2 item 10, §3): vanishing or exploding gradients,
and the update:data ratio far from 1e-3."""
from __future__ import annotations

import math

from babysit.activations import judged
from babysit.doctor.findings import Finding, rnd, rule
from babysit.reference import TARGET_UPDATE_LOG10

# Vanishing (§3: layer gradients "should look alike, neither shrinking nor exploding with depth"):
# the input-side layer's activation-gradient std below VANISH_RATIO x the output-side one's, two
# orders of magnitude. Healthy suite nets stay within one order.
VANISH_RATIO = 1e-2
# Exploding, over time: the global gradient norm at a sample more than EXPLODE_GROWTH x its value
# at the first sample (orders of magnitude); or by depth: the input side's gradient std more than
# 1 / VANISH_RATIO x the output side's.
EXPLODE_GROWTH = 100.0
# Update:data (item 10): log10 about -3 is good, -1 far too large. Median over the samples of
# each weight matrix: above UPDATE_HIGH (30x the target) or below UPDATE_LOW, a decade under the
# target (10x too small; the plateau rule's LR_TOO_LOW_LOG10). The suite's 15 healthy setups' lowest
# median is -3.68 (healthy-digits-cnn's conv1; names-kaiming, its lr cut 10x halfway, -2.96); -5
# (100x) let SGD at lr 1e-2 on makemore (-4.4, 10x below its healthy 0.1) end 9% high unflagged.
UPDATE_HIGH, UPDATE_LOW = -1.5, TARGET_UPDATE_LOG10 - 1.0


def _positions(row: dict):
    """What makes two layers' per-element gradient stds comparable: the same positions per
    example (a conv layer's spatial size; () for a vector). A conv map feeding global average
    pooling gets 1/(H*W) of the pooled gradient per element, so comparing it with a Linear layer
    reads that dilution as vanishing (a healthy 32x32 CNN read 0.0018). Rows recorded before the
    Watch kept shapes (None) form one group, as before."""
    shape = row.get("shape")
    return None if shape is None else tuple(shape[1:])


def _depth_ratios(s: dict) -> list[tuple[dict, dict, float]]:
    """(input-side row, output-side row, ratio of their gradient stds) per group of layers with
    the same positions per example, for groups of two layers or more."""
    groups: dict = {}
    for r in s["layers"]:
        if r.get("grad_std") and judged(r["kind"]):
            groups.setdefault(_positions(r), []).append(r)
    return [(rows[0], rows[-1], rows[0]["grad_std"] / rows[-1]["grad_std"])
            for rows in groups.values() if len(rows) >= 2]


def _depth_finding(view, code: str, bad, threshold: float, advice) -> list[Finding]:
    """The first sampled group whose input-to-output gradient ratio is `bad`, as a finding."""
    for s in view.checked_samples():
        for first, last, ratio in _depth_ratios(s):
            if bad(ratio):
                return [Finding(code, "warning", first["name"],
                                {"step": s["step"], "grad_std_first": rnd(first["grad_std"]),
                                 "grad_std_last": rnd(last["grad_std"]), "ratio": rnd(ratio, 3),
                                 "threshold": threshold},
                                advice(first["name"], last["name"], ratio), fix="gain-init")]
    return []


@rule("vanishing-gradients", order=300)
def vanishing_gradients(view) -> list[Finding]:
    """Activation-gradient std at the first layer below VANISH_RATIO x that at the last (not once
    the run has converged: its gradients are small everywhere, and nothing is left to learn)."""
    if view.converged():
        return []
    return _depth_finding(
        view, "vanishing-gradients", lambda r: r < VANISH_RATIO, VANISH_RATIO,
        lambda first, last, r: f"Gradients shrink {rnd(1 / r, 2):g}x from {last} back to {first}, so early "
                               "layers barely learn: use a gain-correct init (kaiming) or BatchNorm.")


@rule("exploding-gradients", order=310)
def exploding_gradients(view) -> list[Finding]:
    """Gradient norm grown EXPLODE_GROWTH x since the first sample (fix: clipping), or activation
    gradients growing 1 / VANISH_RATIO x toward the input (an init problem; fix: gain-correct init)."""
    norms = [(s["step"], s.get("grad_norm")) for s in view.samples]
    norms = [(t, n) for t, n in norms if n is not None and math.isfinite(n)]
    if len(norms) >= 2 and norms[0][1] > 0:
        t, peak = max(norms[1:], key=lambda tn: tn[1])
        if peak > EXPLODE_GROWTH * norms[0][1]:
            return [Finding("exploding-gradients", "warning", "model",
                            {"first_grad_norm": rnd(norms[0][1]), "peak_grad_norm": rnd(peak), "peak_step": t,
                             "growth": rnd(peak / norms[0][1], 3), "threshold": EXPLODE_GROWTH},
                            "The gradient norm grew by orders of magnitude during training: clip it "
                            "(train.grad_clip: 1.0) and check the learning rate.", fix="grad-clip")]
    return _depth_finding(
        view, "exploding-gradients", lambda r: r > 1 / VANISH_RATIO, 1 / VANISH_RATIO,
        lambda first, last, r: f"Gradients grow {rnd(r, 2):g}x from {last} back to {first}: the init's gain "
                               "is too large for this depth. Use a gain-correct init (kaiming) or BatchNorm.")


def _update_findings(view, code: str, bad, threshold: float, advice, fix: str) -> list[Finding]:
    """One finding per weight matrix whose median log10 update:data is `bad`."""
    return [Finding(code, "warning", name,
                    {"median_log10_update_data": rnd(u, 3), "target": TARGET_UPDATE_LOG10, "threshold": threshold},
                    advice(name, u), fix=fix)
            for name, u in view.updates().items() if bad(u)]


@rule("update-ratio-high", order=320)
def update_ratio_high(view) -> list[Finding]:
    """Median log10 update:data of a weight matrix above UPDATE_HIGH."""
    return _update_findings(
        view, "update-ratio-high", lambda u: u > UPDATE_HIGH, UPDATE_HIGH,
        lambda name, u: f"Each step changes {name} by 10^{u:.1f} of its size (about 10^-3 is healthy): lower "
                        "optim.lr (the repair divides it to bring the ratio near -3).", "lower-lr")


@rule("update-ratio-low", order=330)
def update_ratio_low(view) -> list[Finding]:
    """Median log10 update:data of a weight matrix below UPDATE_LOW, unless the run has converged
    (a converged run's updates are small because its gradients are: the lr is not too low)."""
    if view.converged():
        return []
    return _update_findings(
        view, "update-ratio-low", lambda u: u < UPDATE_LOW, UPDATE_LOW,
        lambda name, u: f"Each step changes {name} by only 10^{u:.1f} of its size (about 10^-3 is healthy): "
                        "raise optim.lr (the repair multiplies it to bring the ratio near -3).", "raise-lr")
