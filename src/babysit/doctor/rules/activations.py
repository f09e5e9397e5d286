"""Rules on the sampled activations (LECTURES.md §3): saturation, dead units, collapse with depth.
They look at the initialization (the first sample) and at the latest sample: a problem either
set up by the init or grown during training."""
from __future__ import annotations

from babysit.activations import judged, lookup
from babysit.doctor.findings import Finding, rnd, rule

# Saturation share (|tanh| > 0.97, Watch's SATURATED). LECTURES.md §3: a healthy gain-5/3 net
# without BN has its first layer ~20% saturated and ~5% after; MM3's original net is far above
# half. A layer past 40% is "a large share".
SATURATION_SHARE = 0.40
# Dead ReLU units (zero on every example of the sampled batch). L6: "as much as 10 to 20%" of a
# trained net; on a 32-example batch some live units read as dead by chance, so only past half of
# the layer is it flagged.
DEAD_SHARE = 0.50
# Collapse (L6 init experiment, std 0.01: activations shrink to 0 layer by layer): a hidden layer
# after the first whose activation std is below COLLAPSE_STD and below COLLAPSE_RATIO x the first
# hidden layer's. Healthy nets keep std ~0.65 (tanh) or ~0.5-1 (ReLU) at every depth; the suite's
# SiLU CNN with average pooling starts at 0.22 -> 0.04 (a mild shrink that trains fine), so the
# bar sits an order of magnitude below both.
COLLAPSE_STD, COLLAPSE_RATIO = 0.01, 0.1
# Dead units after "a too-high learning rate" (L6, the common cause): when the weight feeding the
# layer moves by more than 10^DEAD_LR_HIGH of itself per step (half a decade above the lectures'
# -3), the fix lowers the lr as well as switching to leaky ReLU.
DEAD_LR_HIGH = -2.5


def _per_layer(view, worst) -> dict[str, tuple[dict, dict]]:
    """For each layer, the (sample, row) with the worst value of `worst(row)` (None: not relevant)."""
    out = {}
    for s in view.checked_samples():
        for row in s["layers"]:
            if not judged(row["kind"]):
                continue  # softmax outputs: peaked is normal
            v = worst(row)
            if v is not None and (row["name"] not in out or v > worst(out[row["name"]][1])):
                out[row["name"]] = (s, row)
    return out


@rule("saturated-activations", order=100)
def saturated_activations(view) -> list[Finding]:
    """A tanh/sigmoid layer with more than SATURATION_SHARE of its values saturated."""
    found = []
    for name, (s, row) in _per_layer(view, lambda r: r.get("saturated") if lookup(r["kind"]).bounded else None).items():
        if row["saturated"] > SATURATION_SHARE:
            found.append(Finding("saturated-activations", "warning", name,
                                 {"step": s["step"], "saturated_share": rnd(row["saturated"], 3),
                                  "std": rnd(row.get("std"), 3), "threshold": SATURATION_SHARE},
                                 f"{rnd(100 * row['saturated'], 3)}% of {name}'s outputs sit in the flat tails, where "
                                 "no gradient flows: initialize with the activation's gain (kaiming) or add BatchNorm.",
                                 fix="gain-init"))
    return found


@rule("dead-units", order=110)
def dead_units(view) -> list[Finding]:
    """More than DEAD_SHARE of a ReLU layer's units inactive on every example of the batch."""
    found, updates, feeding = [], view.updates(), view.feeding_weights()
    for name, (s, row) in _per_layer(view, lambda r: r.get("dead") if lookup(r["kind"]).can_die else None).items():
        if row["dead"] > DEAD_SHARE:
            u = updates.get(feeding.get(name))
            high = u is not None and u > DEAD_LR_HIGH
            found.append(Finding("dead-units", "warning", name,
                                 {"step": s["step"], "dead_share": rnd(row["dead"], 3), "threshold": DEAD_SHARE,
                                  "median_log10_update_data": rnd(u, 3), "lr_too_high": high},
                                 f"{rnd(100 * row['dead'], 3)}% of {name}'s units output 0 on every example and no "
                                 "longer learn: " + (f"the weight feeding them moves 10^{u:.1f} of itself per step, "
                                                     "too high a learning rate; use leaky ReLU and lower optim.lr."
                                                     if high else "use leaky ReLU."), fix="leaky-relu"))
    return found


@rule("activations-collapse", order=120)
def activations_collapse(view) -> list[Finding]:
    """A deeper hidden layer's std below COLLAPSE_STD and below COLLAPSE_RATIO x the first's."""
    for s in view.checked_samples():
        rows = [r for r in s["layers"] if r.get("std") is not None and judged(r["kind"])]
        if len(rows) < 2 or not rows[0]["std"]:
            continue
        first = rows[0]["std"]
        for row in rows[1:]:
            if row["std"] < COLLAPSE_STD and row["std"] < COLLAPSE_RATIO * first:
                return [Finding("activations-collapse", "warning", row["name"],
                                {"step": s["step"], "std": rnd(row["std"], 3), "first_layer_std": rnd(first, 3),
                                 "threshold_std": COLLAPSE_STD, "threshold_ratio": COLLAPSE_RATIO},
                                f"Activations shrink toward 0 with depth (std {rnd(row['std'], 3)} at {row['name']}): "
                                "the init is too small for this depth. Use a gain-correct init (kaiming) or BatchNorm.",
                                fix="gain-init")]
    return []
