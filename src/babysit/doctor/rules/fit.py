"""Rules on the train/val comparison at evaluations (LECTURES.md §2 item 9)."""
from __future__ import annotations

import math

from babysit.doctor.findings import Finding, rnd, rule

# Overfitting (item 9: "watch the train/val accuracy gap: big gap -> overfitting"; "large and
# growing"): at the last evaluation the val loss sits more than OVERFIT_RISE above its best so far
# (it turned up) while the train loss kept falling, and train accuracy exceeds val accuracy by more
# than OVERFIT_ACC_GAP, more than at the best evaluation. The suite's healthy digits nets end with
# a 0.01-0.04 accuracy gap even when their val loss creeps up (180 val images: noisy losses).
OVERFIT_RISE, OVERFIT_ACC_GAP = 0.10, 0.10
# Underfitting ("no gap -> increase capacity"): at the end, val loss still above UNDERFIT_SHARE of
# ln(C) (chance level) with the gap under UNDERFIT_GAP of it. The suite's healthy runs end at
# 0.02-0.65 x ln(C) (makemore's best MLPs at 2.10 / 3.30 = 0.64).
UNDERFIT_SHARE, UNDERFIT_GAP = 0.80, 0.05
# ... and only once the val loss has levelled off: less than UNDERFIT_PROGRESS relative gain over
# the last two evaluations (a run cut short while still improving needs more steps, not capacity).
UNDERFIT_PROGRESS = 0.02


def _gap(e: dict) -> float | None:
    if e.get("val_loss") is None or e.get("train_probe_loss") is None:
        return None
    return e["val_loss"] - e["train_probe_loss"]


def _acc_gap(e: dict) -> float | None:
    if e.get("train_acc") is None or e.get("val_acc") is None:
        return None
    return e["train_acc"] - e["val_acc"]


@rule("overfitting", order=200)
def overfitting(view) -> list[Finding]:
    """Val loss up OVERFIT_RISE from its best, train loss down, accuracy gap past OVERFIT_ACC_GAP and growing."""
    evals = [e for e in view.evals if _gap(e) is not None and math.isfinite(e["val_loss"])]
    if len(evals) < 3:
        return []
    best = min(evals, key=lambda e: e["val_loss"])
    last = evals[-1]
    rise = last["val_loss"] / best["val_loss"] - 1
    acc_gap = _acc_gap(last)
    if rise <= OVERFIT_RISE or last["train_probe_loss"] >= best["train_probe_loss"] or acc_gap is None \
            or acc_gap <= OVERFIT_ACC_GAP or acc_gap <= (_acc_gap(best) or 0.0):
        return []
    return [Finding("overfitting", "warning", None,
                    {"best_val_loss": rnd(best["val_loss"]), "best_step": best["step"], "val_loss": rnd(last["val_loss"]),
                     "train_loss": rnd(last["train_probe_loss"]), "val_rise": rnd(rise, 3),
                     "train_acc": rnd(last["train_acc"], 3), "val_acc": rnd(last["val_acc"], 3), "acc_gap": rnd(acc_gap, 3)},
                    "Val loss is rising while train loss falls: the model memorizes the training set. "
                    "Add regularization (dropout, weight decay) or stop earlier.", fix="regularize")]


@rule("underfitting", order=210)
def underfitting(view) -> list[Finding]:
    """At the end: val loss above UNDERFIT_SHARE x ln(C), gap under UNDERFIT_GAP, levelled off."""
    c = view.classes()
    evals = [e for e in view.evals if _gap(e) is not None]
    if not view.finished or not evals or not c or c < 2 or not view.classification() or view.converged():
        return []
    last, ln_c = evals[-1], math.log(c)
    gain = (evals[-2]["val_loss"] - last["val_loss"]) / evals[-2]["val_loss"] if len(evals) > 1 else 0.0
    if not math.isfinite(last["val_loss"]) or last["val_loss"] <= UNDERFIT_SHARE * ln_c \
            or abs(_gap(last)) >= UNDERFIT_GAP * last["val_loss"] or gain >= UNDERFIT_PROGRESS:
        return []
    return [Finding("underfitting", "warning", None,
                    {"val_loss": rnd(last["val_loss"]), "train_loss": rnd(last["train_probe_loss"]),
                     "ln_C": rnd(ln_c), "share_of_chance": rnd(last["val_loss"] / ln_c, 3)},
                    "Train and val losses are both close to chance with no gap: the model is too small or "
                    "too constrained. Increase capacity (model.hidden) or reduce regularization.", fix="capacity")]
