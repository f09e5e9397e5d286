"""Rules on the training-loss curve (LECTURES.md §2 items 3, 6-8): the first loss against ln(C),
blow-ups, non-finite values, plateaus and oscillations."""
from __future__ import annotations

import math
from statistics import fmean, pstdev

import numpy as np

from babysit.doctor.findings import Finding, rnd, rule
from babysit.reference import DIVERGE_FACTOR, INIT_LOSS_LOW, TARGET_UPDATE_LOG10

# Item 3: diffuse logits start at ln(C). MM3's first net started at 27 against 3.29 (8x); the
# preflight check warns past 1.5x. A default (gain-1, unscaled) output layer starts at 1.1-1.3x
# on our presets (tests/doctor), so 2x is well past "diffuse" and well below MM3's 8x.
INIT_LOSS_HIGH = 2.0
# Far below ln(C) before any update: the labels leak into the inputs, or the loss is not the
# softmax cross-entropy: reference.INIT_LOSS_LOW, the checklist's bound.
# Item 8: "if the cost ever exceeds 3 x the original cost, break out early" (reference.py).
# Compared on means of DIVERGE_WINDOW steps so one unlucky batch does not stop a run.
DIVERGE_WINDOW = 5
# Plateau (item 7: "linear/flat: lr too low"; "flat for a while then suddenly learning: bad
# init"). The curve is cut into about CURVE_WINDOWS window means; it is flat while the window mean
# stays within PLATEAU_DROP of the first window's (a curve that leaves the band upward is rising,
# not flat: the divergence and oscillation rules speak to it). Flat for PLATEAU_SHARE of the run, and at least
# PLATEAU_MIN_STEPS steps, is a plateau; healthy runs of the suite leave the band within the first
# 5-10% of their steps.
CURVE_WINDOWS, MIN_WINDOW = 20, 10
PLATEAU_DROP, PLATEAU_SHARE, PLATEAU_MIN_STEPS = 0.05, 0.3, 200
# An update:data ratio a decade below the lectures' -3 marks the plateau as lr-too-low.
LR_TOO_LOW_LOG10 = TARGET_UPDATE_LOG10 - 1.0
# Oscillation (item 7 / LECTURES.md §1: lr too high, or batch too small): over the second half of
# the run the per-step loss swings with a std above OSC_SWING x ln(C) while its last third sits
# less than OSC_PROGRESS below its first third. Healthy suite runs swing by 0.003-0.065 x ln(C);
# SGD at 50x the right lr on blobs swings by 0.28 without progress.
OSC_SWING, OSC_PROGRESS, OSC_MIN_STEPS = 0.15, 0.05, 200


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _window_means(losses: list[float]) -> tuple[int, list[float]]:
    w = max(MIN_WINDOW, len(losses) // CURVE_WINDOWS)
    return w, [fmean(losses[i:i + w]) for i in range(0, len(losses) - w + 1, w)]


def _first_loss(view):
    """The loss before any update: given, or losses[0] when the view starts at step 1."""
    if view.first_loss is not None:
        return view.first_loss if _finite(view.first_loss) else None
    if view.loss_start != 1 or not view.losses or not _finite(view.losses[0]):
        return None
    return view.losses[0]


def _ln_c(view):
    """ln(C) for a classification loss (the first loss of diffuse logits); None for any other."""
    if not view.classification():
        return None
    c = view.classes()
    return math.log(c) if c and c > 1 else None


def _init_loss(view, code: str, bad, where, threshold: float, advice: str, fix=None) -> list[Finding]:
    """The first loss against ln(C), as a finding when bad(first, ln_c)."""
    ln_c, first = _ln_c(view), _first_loss(view)
    if first is None or ln_c is None or not bad(first, ln_c):
        return []
    return [Finding(code, "warning", where, {"first_loss": rnd(first), "ln_C": rnd(ln_c),
                                            "ratio": rnd(first / ln_c, 3), "threshold_ratio": threshold},
                    advice, fix=fix)]


@rule("init-loss-high", order=400)
def init_loss_high(view) -> list[Finding]:
    """First loss above INIT_LOSS_HIGH x ln(C): confidently wrong logits at init (hockey stick)."""
    return _init_loss(view, "init-loss-high", lambda first, ln_c: first > INIT_LOSS_HIGH * ln_c,
                      view.output_layer(), INIT_LOSS_HIGH,
                      "The softmax is confidently wrong at init, so early steps are spent squashing logits: "
                      "scale the output layer's weights down (model.init.output.scale: 0.01) and zero its bias.",
                      fix="output-scale")


@rule("init-loss-low", order=410)
def init_loss_low(view) -> list[Finding]:
    """First loss below INIT_LOSS_LOW x ln(C): a label leak or the wrong loss."""
    return _init_loss(view, "init-loss-low", lambda first, ln_c: first < INIT_LOSS_LOW * ln_c, None,
                      INIT_LOSS_LOW, "The loss is far below chance before any training: check that the labels "
                      "do not leak into the inputs and that the loss is the softmax cross-entropy over all classes.")


@rule("non-finite", order=420)
def non_finite(view) -> list[Finding]:
    """Any NaN/Inf in the loss, an activation's statistics or a parameter's norm (no threshold)."""
    where, evidence = None, {}
    bad = np.flatnonzero(~np.isfinite(np.asarray(view.losses, dtype=float)))
    if len(bad):
        where, evidence = "loss", {"first_bad_step": int(bad[0]) + view.loss_start, "bad_steps": len(bad)}
    for s in view.samples:
        if where is not None:
            break
        for row in s["layers"]:
            if not (_finite(row.get("mean")) and _finite(row.get("std"))):
                where, evidence = row["name"], {"step": s["step"], "mean": row.get("mean"), "std": row.get("std")}
                break
        for row in s["params"] or []:
            if where is None and not _finite(row.get("norm")):
                where, evidence = row["name"], {"step": s["step"], "norm": row.get("norm")}
    if where is None:
        return []
    return [Finding("non-finite", "error", where, evidence,
                    "NaN or Inf appeared, usually from a learning rate too high (item 6): lower optim.lr "
                    "(the repair divides it by 10) or set train.grad_clip.", fix="lower-lr")]


@rule("loss-diverged", order=430)
def loss_diverged(view) -> list[Finding]:
    """A DIVERGE_WINDOW-step mean loss above DIVERGE_FACTOR x the first loss (item 8)."""
    first = _first_loss(view)
    if first is None or first <= 0 or len(view.losses) < DIVERGE_WINDOW:  # <= 0: not a likelihood loss
        return []
    x = np.asarray(view.losses, dtype=float)
    x[~np.isfinite(x)] = np.inf  # a NaN step counts as blown up
    means = np.convolve(x, np.ones(DIVERGE_WINDOW) / DIVERGE_WINDOW, mode="valid")
    means[np.isnan(means)] = np.inf
    over = np.flatnonzero(means > DIVERGE_FACTOR * first)
    if len(over):
        i = int(over[0])
        return [_diverged({"first_loss": rnd(first), "window_mean": rnd(float(means[i])),
                           "step": i + DIVERGE_WINDOW - 1 + view.loss_start})]
    return []


def _diverged(evidence: dict) -> Finding:
    return Finding("loss-diverged", "error", "loss", {**evidence, "factor": DIVERGE_FACTOR},
                   "The loss rose past 3x its starting value: the learning rate is too high. "
                   "Lower optim.lr (the repair divides it by 10).", fix="lower-lr")


def diverged_window(first_window: float, window: float, step: int):
    """Without a Watch (watch.enabled: false) only the log windows' mean losses are known: the
    same 3x test (item 8) on a window's mean against the first window's."""
    if not (_finite(first_window) and first_window > 0 and _finite(window)) or window <= DIVERGE_FACTOR * first_window:
        return None
    return _diverged({"first_window_loss": rnd(first_window), "window_mean": rnd(window), "step": step})


@rule("loss-plateau", order=440)
def loss_plateau(view) -> list[Finding]:
    """The window-mean loss stays within PLATEAU_DROP of its start for PLATEAU_SHARE of the run."""
    losses = view.losses
    if view.loss_start != 1 or len(losses) < PLATEAU_MIN_STEPS or not all(_finite(x) for x in losses):
        return []  # a resumed run's curve starts flat by nature
    if view.converged():
        return []  # flat at the bottom: done, not stuck
    w, means = _window_means(losses)
    left = next((i for i, m in enumerate(means) if abs(m - means[0]) > PLATEAU_DROP * means[0]), None)
    if left is not None and means[left] > means[0]:
        return []
    flat_steps = (left if left is not None else len(means)) * w
    if flat_steps < max(PLATEAU_MIN_STEPS, PLATEAU_SHARE * len(losses)):
        return []
    upd = view.median_update()
    too_low = left is None or (upd is not None and upd < LR_TOO_LOW_LOG10)
    evidence = {"flat_steps": flat_steps, "steps": len(losses), "start_loss": rnd(means[0]),
                "end_loss": rnd(means[-1]), "median_log10_update_data": rnd(upd, 3)}
    if too_low:
        return [Finding("loss-plateau", "warning", "loss", evidence,
                        "The loss barely moves: the learning rate is too low (item 6). Raise optim.lr "
                        "(the repair multiplies it by 10).", fix="raise-lr")]
    return [Finding("loss-plateau", "warning", "loss", evidence,
                    "The loss stayed flat for a long stretch, then dropped: a sign of a bad initialization "
                    "(item 7). Use a gain-correct init (model.init.hidden.weight: kaiming).", fix="gain-init")]


@rule("loss-oscillating", order=450)
def loss_oscillating(view) -> list[Finding]:
    """Second half: per-step loss std above OSC_SWING x ln(C), its last third under OSC_PROGRESS
    below its first third."""
    ln_c, losses = _ln_c(view), view.losses
    if ln_c is None or len(losses) < OSC_MIN_STEPS or not all(_finite(x) for x in losses):
        return []
    half = losses[len(losses) // 2:]
    swing = pstdev(half)
    third = len(half) // 3
    early, late = fmean(half[:third]), fmean(half[-third:])
    progress = (early - late) / max(abs(early), 1e-12)
    if swing <= OSC_SWING * ln_c or progress >= OSC_PROGRESS:
        return []
    return [Finding("loss-oscillating", "warning", "loss",
                    {"swing_std": rnd(swing), "ln_C": rnd(ln_c), "swing_over_ln_C": rnd(swing / ln_c, 3),
                     "progress": rnd(progress, 3)},
                    "The loss swings from batch to batch without getting lower: the learning rate is too "
                    "high or the batch too small. Lower optim.lr (the repair divides it by 3).", fix="lower-lr")]
