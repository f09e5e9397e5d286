"""`babysit lab batchnorm`: MM3's deep tanh net (preset makemore-deep: five hidden layers of 100
tanh units) trained with and without BatchNorm, at several initial weight scales (x the
gain-correct kaiming std, 5/3 / sqrt(fan_in)) and learning rates. L6: BatchNorm "reduces the
strong dependence on initialization" and allows higher learning rates. Without BatchNorm the net
is the same with a bias in each layer and no output BatchNorm (its 0.1 output scale then goes on
the output weight, as in MM3 before BatchNorm)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from babysit.data import build_data
from babysit.labs.base import LABS, Lab, LabResult, Table
from babysit.labs.runs import NAMES_CHANCE, QUIET, subset, train
from babysit.report.plots import plt
from babysit.spec import load_spec

PRESET = "makemore-deep"
VARIANTS = {"BatchNorm": [], "no BatchNorm": ["model.batchnorm=false", "model.output_batchnorm=false"]}


@dataclass(frozen=True)
class BatchnormSize:
    steps: int = 1000
    scales: tuple = (0.1, 0.3, 1.0, 3.0, 10.0)
    lrs: tuple = (0.1, 1.0)  # MM3's lr and 10x it
    train_examples: Optional[int] = None  # names training examples (None: all 182,625)


def _spread(losses: list[float]) -> float:
    """max - min of the final losses across inits (infinite when a run blew up)."""
    return max(losses) - min(losses)


def _figure(final: dict, size: BatchnormSize):
    finite = [x for by_lr in final.values() for by_scale in by_lr.values() for x in by_scale.values() if math.isfinite(x)]
    ceiling = max(finite, default=1.0) * 1.05  # where a run that blew up is marked
    fig, axes = plt.subplots(1, len(size.lrs), figsize=(5 * len(size.lrs), 4.5), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], size.lrs):
        for variant, style in zip(VARIANTS, ("o-", "s--")):
            losses = [final[variant][lr][s] for s in size.scales]
            line, = ax.plot(size.scales, [v if math.isfinite(v) else math.nan for v in losses], style, label=variant)
            blown = [s for s, v in zip(size.scales, losses) if not math.isfinite(v)]
            ax.plot(blown, [ceiling] * len(blown), "x", color=line.get_color(), markersize=10)
        ax.axvline(1.0, color="grey", linewidth=0.5)
        ax.set(xscale="log", title=f"lr {lr:g}", xlabel="initial weight scale (x kaiming std)")
    axes[0][0].set_ylabel(f"final train loss after {size.steps:,} steps (x at the top: blew up)")
    axes[0][0].legend()
    fig.suptitle("MM3's deep tanh net (5 x 100): final loss against the init scale, with and without BatchNorm")
    fig.tight_layout()
    return fig


def run(size: BatchnormSize, result: LabResult, device, echo) -> None:
    data = subset(build_data(load_spec(PRESET).data), size.train_examples)
    final: dict = {v: {lr: {} for lr in size.lrs} for v in VARIANTS}
    for variant, overrides in VARIANTS.items():
        for lr in size.lrs:
            for scale in size.scales:
                spec = load_spec(PRESET, [*overrides, f"model.init.hidden.scale={scale}", f"optim.lr={lr}",
                                          "schedule.name=constant", "schedule.milestones=[]",
                                          f"train.steps={size.steps}", f"train.eval_every={size.steps}", *QUIET])
                r = train(spec, result.out, f"{variant.replace(' ', '-')}-lr{lr:g}-scale{scale:g}", data)
                final[variant][lr][scale] = r.train_loss
            echo(f"{variant}, lr {lr:g}: " + ", ".join(f"x{s:g} -> {v:.4f}" for s, v in final[variant][lr].items()))
    result.save(_figure(final, size), "batchnorm_robustness")
    result.tables.append(Table(
        f"{PRESET}: final train loss after {size.steps:,} steps at each initial weight scale (x kaiming) "
        "and lr (inf: blew up)",
        ["variant", "lr", *(f"x{s:g}" for s in size.scales), "spread (max - min)"],
        [[v, lr, *(final[v][lr][s] for s in size.scales), _spread(list(final[v][lr].values()))]
         for v in VARIANTS for lr in size.lrs]))
    result.data = {v: {str(lr): {str(s): x for s, x in by_scale.items()} for lr, by_scale in by_lr.items()}
                   for v, by_lr in final.items()}

    spreads = {lr: (_spread(list(final["BatchNorm"][lr].values())), _spread(list(final["no BatchNorm"][lr].values())))
               for lr in size.lrs}
    result.claim("BatchNorm makes the final loss depend less on the init (L6): a smaller spread across inits at every lr",
                 all(bn < plain for bn, plain in spreads.values()),
                 "; ".join(f"lr {lr:g}: {bn:.3f} vs {plain:.3f}" for lr, (bn, plain) in spreads.items()))
    # "trains": every init ends below ln(27), the loss of a net that knows nothing
    trains = {v: max((lr for lr in size.lrs if all(x < NAMES_CHANCE for x in final[v][lr].values())), default=0.0)
              for v in VARIANTS}
    result.claim(f"BatchNorm allows higher learning rates (L6): every init ends below ln(27) = {NAMES_CHANCE:.2f} "
                 "at a higher lr", trains["BatchNorm"] > trains["no BatchNorm"],
                 f"highest such lr: BatchNorm {trains['BatchNorm']:g}, without {trains['no BatchNorm']:g} "
                 "(0: none)")

LABS.register("batchnorm", order=5, item=Lab(
    "batchnorm", "MM3's deep tanh net with and without BatchNorm at several init scales and lrs: final loss table "
    "(L6: robust to the init)",
    run, default=BatchnormSize(), full=BatchnormSize(steps=5000, lrs=(0.01, 0.03, 0.1, 0.3, 1.0))))
