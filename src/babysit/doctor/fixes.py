"""Fixes: small registered functions that edit a spec (as a plain dict) to answer a finding, and
the plan of a repair round (which findings' fixes to apply; babysit/repair.py trains the attempts).
A user's network (model.kind python) is built by its own code: the fixes that would rebuild its
architecture (activation, BatchNorm, biases, dropout, width) have nothing to change there.

Each returns a one-line description of what it changed and why, or None when it has nothing left
to try (the repair loop then stops for that finding). Several fixes change optim.lr; FIX_GROUPS
lets the repair loop apply only one of them per round.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Callable, Iterable, Optional

from babysit.doctor.findings import Finding, most_severe_first
from babysit.reference import TARGET_UPDATE_LOG10
from babysit.registry import Registry
from babysit.spec import Spec, spec_from_dict

Fix = Callable[[dict, Finding], Optional[str]]
FIXES: Registry[Fix] = Registry("fix")
FIX_GROUPS = {"lower-lr": "lr", "raise-lr": "lr"}
# Applied only when no other fix applies in the same round: more capacity for an underfitting that
# a too-low lr may explain.
LAST_RESORT = {"capacity"}
# Root-cause fixes: when one applies in a round, that round makes no warning-level fix besides it
# (error findings still go first). Over-strong regularization holds the weights near 0, and dead
# units, a plateau, vanishing gradients and underfitting follow from it; cutting the lr, switching
# to leaky ReLU or widening the net treats those consequences and, with the cause still there,
# made the suite's weight-decay-1.0 run end 18% above its counterpart (1.62 vs 1.37).
ROOT_CAUSE = {"less-regularization"}


def user_model(spec: dict) -> bool:
    """The network comes from the user's factory: only its init, the data, the optimizer and the
    training can be changed from the spec."""
    return spec["model"]["kind"] == "python"


def last_resort(f: Finding) -> bool:
    return f.fix in LAST_RESORT


def strong_regularization(spec: dict) -> dict[str, float]:
    """The regularizers of the spec above their STRONG_* bound, by spec path (empty: none)."""
    reg = spec["train"].get("regularizer") or {}
    found = {"optim.weight_decay": spec["optim"].get("weight_decay", 0.0) or 0.0,
             "model.dropout": spec["model"].get("dropout", 0.0) or 0.0,
             "train.regularizer.strength": reg.get("strength", 0.0) or 0.0}
    bound = {"optim.weight_decay": STRONG_DECAY, "model.dropout": MAX_DROPOUT,
             "train.regularizer.strength": STRONG_DECAY}
    return {k: v for k, v in found.items() if v > bound[k]}


def root_cause(spec: dict, f: Finding) -> Finding:
    """The finding with its fix pointed at the cause: underfitting (item 9, no gap) in a strongly
    regularized spec asks for less regularization before more capacity."""
    if f.code == "underfitting" and f.fix == "capacity" and strong_regularization(spec):
        return replace(f, fix="less-regularization")
    return f

# MM3's fix for a confidently wrong softmax: output weights x 0.01, bias 0 (LECTURES.md §2 item 3).
OUTPUT_SCALE = 0.01
# lr cuts. A blow-up (non-finite, 3x loss) means far too high: a decade (item 6's usual range
# spans decades). Oscillation without blow-up is milder: /3 (a half-decade step).
BLOWUP_CUT, SWING_CUT = 10.0, 3.0
# The update:data fixes move the lr by the factor that brings the median ratio to 1e-3 (the
# update scales linearly with lr for SGD and Adam alike; reference.TARGET_UPDATE_LOG10), clamped
# to at most MAX_LR_FACTOR: three decades (first 100: the suite's lr-1e-4 names run stopped at lr
# 1e-2, ratio -4.4, loss 9% high).
MAX_LR_FACTOR = 1000.0
PLATEAU_RAISE = 10.0  # an lr-too-low plateau: one decade up
GRAD_CLIP = 1.0  # global-norm clipping at 1.0, the usual starting value
MIN_BATCH = 32  # MM3's batch for BatchNorm
DROPOUT_STEP, MAX_DROPOUT = 0.25, 0.5  # L7: p = 0.5 is typical
# Strong regularization: weight decay (or an L2/L1 penalty's strength, the same gradient for L2:
# penalties.l2 is 0.5 * sum w^2) above 1e-2, the strongest decay the regularize fix reaches in two
# rounds (WEIGHT_DECAY_START x WEIGHT_DECAY_STEP) and the suite's healthy small-data net's setting
# (healthy-blobs-small-regularized, no underfitting); dropout above L7's typical p = 0.5.
STRONG_DECAY = 1e-2
# Weight decay starts at 1e-3 (first tried 5e-4: the suite's overfitting case ended 5.5% above its
# regularized counterpart after two rounds) and grows 10x per round.
WEIGHT_DECAY_START, WEIGHT_DECAY_STEP = 1e-3, 10.0


def fix(name: str):
    """Register `fn` as the fix a finding names by `name`."""
    return FIXES.register(name)


@fix("output-scale")
def output_scale(spec: dict, f: Finding) -> Optional[str]:
    out = spec["model"]["init"]["output"]
    old = out.get("scale", 1.0)
    if old <= OUTPUT_SCALE * 1e-2:
        return None
    out["scale"] = OUTPUT_SCALE if old > OUTPUT_SCALE else old * 0.1
    out["bias"] = "zeros"
    return (f"model.init.output.scale {old:g} -> {out['scale']:g}, output bias zeros: diffuse logits at init "
            f"(first loss {f.evidence.get('first_loss')} against ln(C) {f.evidence.get('ln_C')})")


@fix("gain-init")
def gain_init(spec: dict, f: Finding) -> Optional[str]:
    m = spec["model"]
    hidden = m["init"]["hidden"]
    want = {"weight": "kaiming", "bias": "zeros", "scale": 1.0}
    if user_model(spec):  # 'auto' keeps the factory's own init: replace it by the gain-correct one
        if all(hidden.get(k) == v for k, v in want.items()):
            return None
        changed = [f"model.init.hidden.{k} {hidden.get(k)} -> {v}" for k, v in want.items() if hidden.get(k) != v]
        hidden.update(want)
        return (", ".join(changed) + " (the gain of the activation after each Linear/Conv): keeps each layer's "
                f"activations at unit scale ({f.code} at {f.where})")
    if hidden.get("weight") not in ("kaiming", "auto") or hidden.get("bias") != "zeros" or hidden.get("scale", 1) != 1:
        changed = [f"model.init.hidden.{k} {hidden.get(k)} -> {v}" for k, v in want.items()
                   if hidden.get(k) != v and not (k == "weight" and hidden.get(k) == "auto")]
        weight = "auto" if hidden.get("weight") == "auto" else "kaiming"  # auto is the gain-correct default
        hidden.update(weight=weight, bias="zeros", scale=1.0)
        return (", ".join(changed) + f" (gain of {m['activation']}): keeps each layer's activations at unit "
                f"scale ({f.code} at {f.where})")
    if not m.get("batchnorm"):
        m["batchnorm"] = True
        m["bias"] = "auto"
        return f"model.batchnorm false -> true: normalizes every hidden layer ({f.code} at {f.where} with a gain-correct init)"
    return None


def _scale_lr(spec: dict, factor: float, why: str) -> str:
    old = spec["optim"]["lr"]
    spec["optim"]["lr"] = float(f"{old * factor:.3g}")
    return f"optim.lr {old:g} -> {spec['optim']['lr']:g} ({why})"


@fix("lower-lr")
def lower_lr(spec: dict, f: Finding) -> Optional[str]:
    if f.code == "update-ratio-high":
        u = f.evidence["median_log10_update_data"]
        cut = min(10 ** (u - TARGET_UPDATE_LOG10), MAX_LR_FACTOR)
        return _scale_lr(spec, 1 / cut, f"/{cut:.3g}: brings {f.where}'s update:data from 10^{u:.2f} to about 10^-3")
    u = f.evidence.get("median_log10_update_data")
    if f.code == "dead-units" and f.evidence.get("lr_too_high") and u is not None:
        cut = min(10 ** (u - TARGET_UPDATE_LOG10), MAX_LR_FACTOR)
        return _scale_lr(spec, 1 / cut, f"/{cut:.3g}: {f.where}'s weight moved 10^{u:.2f} of itself per step")
    if f.code == "dead-units":
        return _scale_lr(spec, 1 / SWING_CUT, f"/{SWING_CUT:g}: units still die without plain ReLU ({f.where})")
    if f.code == "loss-oscillating":
        return _scale_lr(spec, 1 / SWING_CUT, f"/{SWING_CUT:g}: the loss swings without progress")
    return _scale_lr(spec, 1 / BLOWUP_CUT, f"/{BLOWUP_CUT:g}: {f.code}, the lr is far too high")


@fix("raise-lr")
def raise_lr(spec: dict, f: Finding) -> Optional[str]:
    if f.code == "update-ratio-low":
        u = f.evidence["median_log10_update_data"]
        up = min(10 ** (TARGET_UPDATE_LOG10 - u), MAX_LR_FACTOR)
        return _scale_lr(spec, up, f"x{up:.3g}: brings {f.where}'s update:data from 10^{u:.2f} to about 10^-3")
    return _scale_lr(spec, PLATEAU_RAISE, f"x{PLATEAU_RAISE:g}: the loss plateaued with the lr too low")


@fix("leaky-relu")
def leaky_relu(spec: dict, f: Finding) -> Optional[str]:
    """Dead units: leaky ReLU. The lr cut that may come with it is a separate lower-lr request
    (lr_requests), so the repair makes one lr change per round (review: an lr cut here and another
    in the lr group took Adam's 0.05 to 5e-06 in one round)."""
    if spec["model"]["activation"] != "relu":
        return None
    spec["model"]["activation"] = "leaky_relu"
    return f"model.activation relu -> leaky_relu: negative inputs keep a gradient, units cannot die ({f.where})"


def lr_requests(spec: dict, f: Finding) -> list[Finding]:
    """The finding and, where its fix also calls for a lower lr, a lower-lr copy of it: dead units
    whose feeding weight moves fast (the rule's DEAD_LR_HIGH; suite: Adam at lr 0.05 ended 7% above
    its counterpart with either change alone), or units that die without plain ReLU."""
    if f.fix == "leaky-relu" and (f.evidence.get("lr_too_high") or spec["model"]["activation"] != "relu"):
        return [f, replace(f, fix="lower-lr")]
    return [f]


@fix("grad-clip")
def grad_clip(spec: dict, f: Finding) -> Optional[str]:
    t = spec["train"]
    old = t.get("grad_clip")
    t["grad_clip"] = GRAD_CLIP if old is None else old / 10
    return f"train.grad_clip {old} -> {t['grad_clip']:g}: caps the global gradient norm ({f.code})"


@fix("bias-off")
def bias_off(spec: dict, f: Finding) -> Optional[str]:
    old = spec["model"].get("bias")
    if old is False or old == "auto" or user_model(spec):
        return None
    spec["model"]["bias"] = "auto"
    return f"model.bias {old!s} -> auto: no bias in front of a BatchNorm ({f.where})"


@fix("larger-batch")
def larger_batch(spec: dict, f: Finding) -> Optional[str]:
    old = spec["train"]["batch_size"]
    if old == "full" or old >= MIN_BATCH:
        return None
    spec["train"]["batch_size"] = MIN_BATCH
    return f"train.batch_size {old} -> {MIN_BATCH}: stable batch statistics for BatchNorm"


@fix("standardize")
def standardize(spec: dict, f: Finding) -> Optional[str]:
    """Standardize features; images and sequences a CNN reads are zero-centred only (LECTURES.md §1)."""
    old = spec["data"].get("preprocess", "none")
    images = spec["model"]["kind"] in ("cnn", "cnn1d") or spec["data"]["kind"] == "images" \
        or f.evidence.get("stats_per") == "channel"  # the data check measured (N, C, H, W) inputs
    new = "center" if images else "standardize"
    if old in (new, "standardize"):
        return None
    spec["data"]["preprocess"] = new
    return f"data.preprocess {old} -> {new}: zero-mean inputs{', unit scale per feature' if new == 'standardize' else ''} (fit on train)"


@fix("regularize")
def regularize(spec: dict, f: Finding) -> Optional[str]:
    m, o = spec["model"], spec["optim"]
    changes = []
    if m.get("dropout", 0) < MAX_DROPOUT and not user_model(spec):
        new = min(m.get("dropout", 0) + DROPOUT_STEP, MAX_DROPOUT)
        changes.append(f"model.dropout {m.get('dropout', 0):g} -> {new:g}")
        m["dropout"] = new
    old = o.get("weight_decay", 0.0)
    o["weight_decay"] = WEIGHT_DECAY_START if old == 0 else old * WEIGHT_DECAY_STEP
    changes.append(f"optim.weight_decay {old:g} -> {o['weight_decay']:g}")
    return ", ".join(changes) + ": val loss rose while train loss fell (overfitting)"


@fix("capacity")
def capacity(spec: dict, f: Finding) -> Optional[str]:
    m = spec["model"]
    if user_model(spec):
        return None
    old = list(m["hidden"])
    m["hidden"] = [max(4 * h, 16) for h in old]
    return f"model.hidden {old} -> {m['hidden']}: more capacity (underfitting, loss near chance with no gap)"


@fix("less-regularization")
def less_regularization(spec: dict, f: Finding) -> Optional[str]:
    """Item 9's "no gap" with strong regularization: regularization is added "in a targeted way once
    you see overfitting" (LECTURES.md §1, L7), so each strong regularizer goes back to where the
    regularize fix starts (weight decay / penalty WEIGHT_DECAY_START, dropout DROPOUT_STEP)."""
    strong = strong_regularization(spec)
    if not strong:
        return None
    start = {"optim.weight_decay": WEIGHT_DECAY_START, "model.dropout": DROPOUT_STEP,
             "train.regularizer.strength": WEIGHT_DECAY_START}
    for path in strong:
        section, *keys = path.split(".")
        node = spec[section]
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = start[path]
    return (", ".join(f"{k} {v:g} -> {start[k]:g}" for k, v in strong.items())
            + f": regularization held the model near chance (underfitting, {f.evidence.get('share_of_chance')} of ln(C))")


def apply(spec: dict, f: Finding) -> Optional[str]:
    return FIXES[f.fix](spec, f)


def plan_fixes(spec: Spec, findings: Iterable[Finding]) -> tuple[Optional[Spec], list[dict]]:
    """The repaired spec and the list of changes, or (None, []) when no finding has a fix left.
    Errors first; one fix per fix name and per group. One lr change per round: the direction of the
    most severe lr finding, by the largest factor any finding in that direction asks for. A root-cause
    fix (fixes.ROOT_CAUSE) leaves out the round's other warning-level fixes: they treat its symptoms."""
    raw = spec.model_dump(mode="json")
    done_fix, done_group, changes = set(), set(), []
    ordered = most_severe_first([g for f in findings for g in lr_requests(raw, root_cause(raw, f))])
    if any(f.fix in ROOT_CAUSE for f in ordered):
        ordered = [f for f in ordered if f.severity == "error" or f.fix in ROOT_CAUSE]
    late = [f for f in ordered if last_resort(f)]
    ordered = [f for f in ordered if f not in late] + late
    for f in ordered:
        group = FIX_GROUPS.get(f.fix, f.fix)
        if f.fix is None or f.fix in done_fix or group in done_group or (f in late and changes):
            continue
        if group == "lr":
            f = _strongest(raw, [g for g in ordered if g.fix == f.fix])
        change = apply(raw, f)
        if change is None:
            continue
        done_fix.add(f.fix)
        done_group.add(group)
        changes.append({"code": f.code, "where": f.where, "severity": f.severity, "fix": f.fix, "change": change})
    if not changes:
        return None, []
    return spec_from_dict(raw, f"{spec.name} (repaired)"), changes


def _strongest(raw: dict, same_way: list[Finding]) -> Finding:
    """Of the findings asking to move the lr one way, the one that moves it furthest."""
    def lr_after(f):
        trial = copy.deepcopy(raw)
        return apply(trial, f) and trial["optim"]["lr"]
    lrs = [(lr_after(f), f) for f in same_way]
    lrs = [(lr, f) for lr, f in lrs if lr]
    if not lrs:
        return same_way[0]
    pick = min if same_way[0].fix == "lower-lr" else max
    return pick(lrs, key=lambda t: t[0])[1]
