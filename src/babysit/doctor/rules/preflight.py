"""Rules that read the preflight checklist's results (babysit.preflight.checks, LECTURES.md §2):
each failed or warned check becomes a finding with a stable code. The thresholds live in the
checks themselves."""
from __future__ import annotations

from statistics import median

from babysit.doctor.findings import Finding, rnd, rule
from babysit.reference import CENTRED


def _result(view, name: str):
    return next((r for r in view.preflight if r.get("name") == name), None)


def _failed(view, name: str, statuses=("warn", "fail")):
    r = _result(view, name)
    return r if r is not None and r.get("status") in statuses else None


@rule("data-not-centered", order=500)
def data_not_centered(view) -> list[Finding]:
    """The data check found the inputs, as the network sees them, off-centre: mean |mean|/std per
    feature above its CENTRED bound. A spread of feature scales alone, once centred, is left to the
    check's own warning: images are zero-centred only (LECTURES.md §1) and their border pixels
    have tiny stds (digits centred: 250x spread). Without a checklist (a user's loop), the same
    measure on the batches Watch sampled: the input of the first layer with parameters, its median
    over the samples (watch/probe.py)."""
    r = _failed(view, "data") if _result(view, "data") is not None else _from_watch(view)
    if r is None or (r["measured"].get("mean_abs_over_std") or 0.0) <= CENTRED:
        return []
    return [Finding("data-not-centered", "warning", "input", r["measured"],
                    r["advice"] or "Zero-centre and scale the inputs (data.preprocess: standardize).",
                    fix="standardize")]


def _from_watch(view):
    rows = [s["inputs"] for s in view.samples if s.get("inputs") and s["inputs"].get("mean_abs_over_std") is not None]
    if not rows:
        return None
    measured = {k: rnd(median(r[k] for r in rows), 4) for k in ("mean_abs_over_std", "std_spread")}
    measured.update(features=int(rows[0]["features"]), batches=len(rows), source="watch")
    return {"measured": measured,
            "advice": f"The inputs are far from zero mean (mean |mean| / std per feature {measured['mean_abs_over_std']}"
                      f" on the sampled batches): subtract the training set's mean and divide by its std, per "
                      "feature (images: per channel), before the model sees them."}


@rule("reg-not-increasing-loss", order=510)
def reg_not_increasing_loss(view) -> list[Finding]:
    """The regularization check: turning regularization up did not raise the loss (item 4)."""
    r = _failed(view, "regularization")
    if r is None:
        return []
    return [Finding("reg-not-increasing-loss", "warning", None, r["measured"],
                    r["advice"] or "Raising regularization did not raise the loss: check that the penalty "
                    "reaches the loss and the parameters.")]


@rule("cannot-overfit-tiny", order=520)
def cannot_overfit_tiny(view) -> list[Finding]:
    """The overfit-tiny check failed: the model could not memorize a tiny subset (item 5)."""
    r = _failed(view, "overfit-tiny", ("fail",))
    if r is None:
        return []
    return [Finding("cannot-overfit-tiny", "warning", None, r["measured"], r["advice"])]
