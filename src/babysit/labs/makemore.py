"""`babysit lab makemore`: MM3's loss log (LECTURES.md §5) with the five shipped presets, ours
next to the reference. The default runs 20,000 steps a row (lr 0.1, then 0.01 after half, as the
reference does at 200,000), so its losses sit above the reference; --full runs the 200,000 and
holds each row to the reference (as benchmarks/reproduce_makemore.py does)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from babysit.data import build_data
from babysit.labs.base import LABS, Lab, LabResult, Table
from babysit.labs.runs import NAMES_CHANCE, QUIET, train
from babysit.reference import MM3_LOSS_LOG, MM3_STEPS, MM3_TOLERANCE
from babysit.report.plots import plt
from babysit.spec import load_spec
from babysit.train import Callback
from babysit.train.evaluate import evaluate

ORIGINAL = "makemore-original"
NEAR_CHANCE = 0.10  # "near ln(27)": within 10% of it
FAR_ABOVE = 3.0  # MM3's original starts at 27, eight times ln(27); "far above": more than 3x it


@dataclass(frozen=True)
class MakemoreSize:
    steps: int = 20_000
    presets: tuple = tuple(MM3_LOSS_LOG)


class InitialLoss(Callback):
    """The loss on the training probe before the first step (MM3: 27 for the original net)."""

    def on_train_begin(self, trainer) -> None:
        self.loss = evaluate(trainer.model, trainer.train_probe)["loss"]


def _figure(runs: dict, steps: int):
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [3, 2]})
    for preset, (run, _) in runs.items():
        xs, ys = zip(*run.curves.train)
        line, = left.plot(xs, [math.log10(y) for y in ys], linewidth=1, label=preset)
        evals = run.curves.evals
        left.plot([e["step"] for e in evals], [math.log10(e["val_loss"]) for e in evals], "o", color=line.get_color(),
                  markersize=4)
    left.set(title=f"MM3 presets, {steps:,} steps: log10 train loss (mean per log window), val as dots",
             xlabel="step", ylabel="log10 loss")
    left.legend(fontsize=8)
    names = list(runs)
    idx = range(len(names))
    right.bar([i - 0.2 for i in idx], [runs[p][0].summary["val_loss"] for p in names], width=0.4, label="ours")
    right.bar([i + 0.2 for i in idx], [MM3_LOSS_LOG[p][1] for p in names], width=0.4,
              label=f"reference ({MM3_STEPS:,} steps)")
    right.set_xticks(list(idx), [p.removeprefix("makemore-") for p in names], rotation=20)
    lo = min(min(MM3_LOSS_LOG[p][1] for p in names), min(runs[p][0].summary["val_loss"] for p in names))
    right.set(ylim=(lo - 0.05, None), title="final val loss", ylabel="cross-entropy")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(size: MakemoreSize, result: LabResult, device, echo) -> None:
    data = build_data(load_spec(size.presets[0]).data)
    runs = {}
    for preset in size.presets:
        first = InitialLoss()
        spec = load_spec(preset, [f"train.steps={size.steps}", f"schedule.milestones=[{size.steps // 2}]",
                                  f"train.eval_every={max(size.steps // 10, 1)}",
                                  f"train.log_every={max(size.steps // 200, 1)}", *QUIET])
        runs[preset] = (train(spec, result.out, preset, data, [first]), first.loss)
        s = runs[preset][0].summary
        echo(f"{preset}: train {s['train_loss']:.4f}  val {s['val_loss']:.4f}  ({s['wall_s']:.0f} s)")
    result.save(_figure(runs, size.steps), "makemore_loss_log")
    rows = []
    for preset, (r, init) in runs.items():
        ref_train, ref_val = MM3_LOSS_LOG[preset]
        s = r.summary
        rows.append([preset, init, s["train_loss"], ref_train, s["val_loss"], ref_val, s["val_loss"] - ref_val,
                     s["wall_s"]])
    result.tables.append(Table(f"MM3 loss log: ours after {size.steps:,} steps, the reference after {MM3_STEPS:,}",
                               ["preset", "initial loss", "train", "train (ref)", "val", "val (ref)", "val diff",
                                "wall s"], rows))
    result.data = {p: {"initial_loss": init, **r.summary} for p, (r, init) in runs.items()}

    _claims(result, runs, size, echo)


def _claims(result: LabResult, runs: dict, size: MakemoreSize, echo) -> None:
    val = {p: r.summary["val_loss"] for p, (r, _) in runs.items()}
    init = {p: i for p, (_, i) in runs.items()}
    fixes = [p for p in val if p != ORIGINAL]
    short = lambda p: p.removeprefix("makemore-")  # noqa: E731
    if ORIGINAL in val and fixes:
        result.claim("every fix of the init ends below the original net (MM3)", all(val[p] < val[ORIGINAL] for p in fixes),
                     f"val: original {val[ORIGINAL]:.4f}; " + ", ".join(f"{short(p)} {val[p]:.4f}" for p in fixes))
        result.claim(f"the original starts confidently wrong, far above ln(27) = {NAMES_CHANCE:.2f}; the fixes start "
                     "near it (MM3)",
                     init[ORIGINAL] > FAR_ABOVE * NAMES_CHANCE
                     and all(abs(init[p] / NAMES_CHANCE - 1) < NEAR_CHANCE for p in fixes),
                     f"initial loss: original {init[ORIGINAL]:.2f} (bar > {FAR_ABOVE * NAMES_CHANCE:.1f}); fixes "
                     + ", ".join(f"{init[p]:.3f}" for p in fixes) + f" (bar within {100 * NEAR_CHANCE:.0f}%)")
    if size.steps == MM3_STEPS:
        off = {p: val[p] - MM3_LOSS_LOG[p][1] for p in val}
        result.claim(f"each row reproduces the reference val loss within +-{MM3_TOLERANCE}",
                     all(abs(d) <= MM3_TOLERANCE for d in off.values()),
                     ", ".join(f"{short(p)} {d:+.4f}" for p, d in off.items()))
    else:
        echo(f"(the +-{MM3_TOLERANCE} reproduction of each row is judged at --full, {MM3_STEPS:,} steps)")

LABS.register("makemore", order=4, item=Lab(
    "makemore", f"MM3's loss log: the five makemore presets, ours next to the reference (20,000 steps each; "
    f"--full: {MM3_STEPS:,})",
    run, default=MakemoreSize(), full=MakemoreSize(steps=MM3_STEPS)))
