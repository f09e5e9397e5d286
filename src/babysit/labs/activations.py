"""`babysit lab activations`: L6's activation functions (LECTURES.md §1 rows sigmoid to Maxout)
measured three ways.

1. Cost: forward + backward time per step of the activation alone and of one hidden layer
   (Linear + activation; Maxout is its own layer with twice the weights), timed in alternating
   rounds so that a busy machine slows every contender alike; the median round counts.
2. Convergence: steps to reach a target train error on digits with an MLP of four hidden
   layers, SGD with momentum 0.9 (Krizhevsky et al. 2012 trained a four-layer net with momentum
   0.9 and picked each net's lr for the fastest training; L6 quotes their "about six times
   faster" for ReLU against tanh). Each activation at the best lr of a grid, the median over seeds.
3. A high learning rate: MM3's names MLP (two hidden layers) at 10 x MM3's lr, then the share of
   dead units (ReLU: 0 on every example; tanh, sigmoid: saturated on every example, Watch's
   definitions) and of saturated values. L6: "as much as 10 to 20%" of a ReLU net dies, mostly
   from a too-high learning rate.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from babysit.activations import ACTIVATIONS
from babysit.data import build_data
from babysit.labs.base import LABS, Lab, LabResult, Table
from babysit.labs.probes import hidden_outputs, layer_stats
from babysit.labs.runs import QUIET, subset, train
from babysit.nn.blocks import Maxout
from babysit.report.plots import plt
from babysit.spec import load_spec
from babysit.train import Callback
from babysit.train.evaluate import evaluate

NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout")
TARGET_ERROR = 0.02  # digits is far easier than CIFAR-10 (Krizhevsky's target: 25%); 2% is as deep into training
SPEEDUP = 6.0  # L6 / Krizhevsky et al.: ReLU reaches the target "about six times faster" than tanh
ABOUT = 2.0  # "about": within a factor 2 of it
HIGH_LR = 1.0  # 10 x MM3's lr 0.1
DEAD_BAR = 0.05  # ReLUs "die": at least 5% of a layer's units (half L6's lower figure of 10%)
CONVERGENCE_PRESET, HIGH_LR_PRESET = "digits-mlp", "makemore-kaiming"
PROBE = 10_000  # names training examples the dead and saturated shares are measured on


@dataclass(frozen=True)
class ActivationsSize:
    time_batch: int = 256
    time_units: int = 256  # small enough that the activation's share of a layer shows
    time_rounds: int = 7
    time_repeats: int = 20
    hidden: tuple = (100, 100, 100, 100)
    lrs: tuple = (0.01, 0.03, 0.1)
    seeds: int = 2
    max_steps: int = 1000
    eval_every: int = 5
    high_lr_steps: int = 2000
    high_lr_examples: Optional[int] = None  # names training examples (None: all)


def _layer(name: str, units: int) -> nn.Module:
    if name == "maxout":
        return Maxout(units, units)
    return nn.Sequential(nn.Linear(units, units), ACTIVATIONS[name].module())


def _alone(name: str) -> nn.Module:
    if name == "maxout":  # the max over 2 pieces of Maxout, without its linear map
        return _MaxOfPieces()
    return ACTIVATIONS[name].module()


class _MaxOfPieces(nn.Module):
    def forward(self, x):
        return x.unflatten(-1, (-1, 2)).max(-1).values


def time_step(size: ActivationsSize, device: torch.device) -> dict[str, dict[str, float]]:
    """Microseconds per forward + backward of each activation alone and of one hidden layer: the
    median of `time_rounds` rounds, each timing every contender in turn (alternating, so that
    load from other processes falls on all of them)."""
    torch.manual_seed(0)
    x = torch.randn(size.time_batch, size.time_units, device=device)
    pieces = torch.randn(size.time_batch, 2 * size.time_units, device=device)  # Maxout's two pieces per unit
    mods = {n: {"alone": _alone(n).to(device), "layer": _layer(n, size.time_units).to(device)} for n in NAMES}
    times = {n: {"alone": [], "layer": []} for n in NAMES}

    def once(mod, inp):
        mod(inp.detach().requires_grad_()).sum().backward()

    for _ in range(size.time_rounds):
        for n in NAMES:
            for what, inp in (("alone", pieces if n == "maxout" else x), ("layer", x)):
                once(mods[n][what], inp)  # warm
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(size.time_repeats):
                    once(mods[n][what], inp)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[n][what].append((time.perf_counter() - t) / size.time_repeats * 1e6)
    return {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}


class TrainError(Callback):
    """The error on the whole training split at every evaluation; stops the run at the target."""

    def __init__(self, target: float):
        self.target, self.curve, self.reached = target, [], None

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        err = 1.0 - evaluate(trainer.model, trainer.train_split)["acc"]
        self.curve.append((step, err))
        if err <= self.target and self.reached is None:
            self.reached = step
            trainer.stop_reason = f"train error {err:.4f} reached the target {self.target}"


def _model_overrides(name: str) -> list[str]:
    return ["model.layer=maxout", "model.activation=relu"] if name == "maxout" else [f"model.activation={name}"]


def converge(size: ActivationsSize, result: LabResult, echo) -> dict:
    """Per activation: at each lr, the median over seeds of the steps to TARGET_ERROR (infinite:
    not within max_steps), seed 0's error curve, and the best lr."""
    data = build_data(load_spec(CONVERGENCE_PRESET).data)
    out = {}
    for name in NAMES:
        per_lr = {}
        for lr in size.lrs:
            runs = []
            for seed in range(size.seeds):
                cb = TrainError(TARGET_ERROR)
                spec = load_spec(CONVERGENCE_PRESET, [
                    f"model.hidden=[{','.join(map(str, size.hidden))}]", "model.dropout=0", "optim.name=sgd",
                    "optim.momentum=0.9", "optim.weight_decay=0", f"optim.lr={lr}", f"seed={seed}",
                    f"train.steps={size.max_steps}", f"train.eval_every={size.eval_every}",
                    f"train.log_every={size.eval_every}", *_model_overrides(name), *QUIET])
                train(spec, result.out, f"converge-{name}-lr{lr:g}-seed{seed}", data, [cb])
                runs.append(cb)
            steps = [cb.reached if cb.reached is not None else float("inf") for cb in runs]
            per_lr[lr] = {"median": statistics.median(steps), "steps": steps, "curve": runs[0].curve}
        # fewest steps; among runs that never reach the target, the lowest error at the end
        best = min(per_lr, key=lambda lr: (per_lr[lr]["median"], per_lr[lr]["curve"][-1][1]))
        out[name] = {"best_lr": best, "per_lr": per_lr}
        echo(f"digits, {name}: steps to {100 * TARGET_ERROR:g}% train error " +
             ", ".join(f"lr {lr:g} -> {v['median']}" for lr, v in per_lr.items()))
    return out


def high_lr(size: ActivationsSize, result: LabResult, echo) -> dict:
    """Per activation: train names at HIGH_LR, then the dead and saturated shares per hidden layer."""
    data = subset(build_data(load_spec(HIGH_LR_PRESET).data), size.high_lr_examples)
    out = {}
    for name in NAMES:
        spec = load_spec(HIGH_LR_PRESET, ["model.hidden=[200,200]", f"optim.lr={HIGH_LR}", "schedule.name=constant",
                                          "schedule.milestones=[]", f"train.steps={size.high_lr_steps}",
                                          f"train.eval_every={size.high_lr_steps}", *_model_overrides(name), *QUIET])
        run = train(spec, result.out, f"high-lr-{name}", data)
        model = run.model
        layers = []
        diverged = run.train_loss == float("inf")  # non-finite weights: no share means anything
        for layer, kind, h in ([] if diverged else
                               hidden_outputs(model, data.train.x[:PROBE].to(next(model.parameters()).device))):
            inactive = (h <= 0).all(0).float().mean().item()  # units at or below 0 on every example
            layers.append({"layer": layer, "kind": kind, **layer_stats(h, kind), "inactive": inactive,
                           "values": h.flatten().cpu()})
        out[name] = {"train_loss": run.train_loss, "diverged": diverged, "layers": layers}
        echo(f"names at lr {HIGH_LR}, {name}: train loss {run.train_loss:.4f}")
    return out


def _steps(v: float, size: ActivationsSize):
    return f"> {size.max_steps}" if v == float("inf") else (int(v) if v == int(v) else v)


def _worst(layers: list[dict], field: str) -> Optional[float]:
    values = [row[field] for row in layers if row.get(field) is not None]
    return max(values) if values else None


def _cost_figure(cost: dict, size: ActivationsSize):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    idx = range(len(NAMES))
    ax.bar([i - 0.2 for i in idx], [cost[n]["alone"] for n in NAMES], width=0.4, label="activation alone")
    ax.bar([i + 0.2 for i in idx], [cost[n]["layer"] for n in NAMES], width=0.4, label="layer (Linear + activation)")
    ax.set_xticks(list(idx), NAMES)
    ax.set(title=f"forward + backward per step, batch {size.time_batch} x {size.time_units} units "
                 f"(median of {size.time_rounds} alternating rounds)", ylabel="microseconds")
    ax.legend()
    return fig


def _convergence_figure(conv: dict):
    fig, ax = plt.subplots(figsize=(10, 5))
    for name in NAMES:
        best = conv[name]["best_lr"]
        curve = conv[name]["per_lr"][best]["curve"]
        style = "--" if name == "tanh" else "-"
        ax.plot([s for s, _ in curve], [e for _, e in curve], style, label=f"{name} (lr {best:g})")
    ax.axhline(TARGET_ERROR, color="black", linestyle=":", label=f"target {100 * TARGET_ERROR:g}%")
    ax.set(title="digits, 4 hidden layers, SGD + momentum 0.9: train error (seed 0, each at its best lr)",
           xlabel="step", ylabel="train error (log)", yscale="log")
    ax.legend()
    return fig


def _high_lr_figure(hl: dict):
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, name in zip(axes.flat, NAMES):
        if hl[name]["diverged"]:  # no outputs to draw: say so in an empty panel
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{name}: diverged\n(non-finite loss, no units to measure)", ha="center",
                    va="center", transform=ax.transAxes)
            continue
        row = hl[name]["layers"][-1]
        lo, hi = ACTIVATIONS[name].value_range
        ax.hist(row["values"].clamp(lo, hi).numpy(), bins=60, range=(lo, hi))
        ax.set_yscale("log")
        if row["saturated"] is not None:
            share = f"saturated {100 * row['saturated']:.1f}%, dead {100 * row['dead']:.1f}%"
        else:
            share = f"at or below 0 {100 * row['zero']:.1f}%" + (
                f", dead {100 * row['dead']:.1f}%" if row["dead"] is not None else "")
        ax.set_title(f"{name} ({row['layer']}): {share}", fontsize=9)
    fig.suptitle(f"names MLP after training at lr {HIGH_LR}: the last hidden layer's outputs (log count)")
    fig.tight_layout()
    return fig


def _tables(size: ActivationsSize, cost: dict, conv: dict, hl: dict) -> list[Table]:
    relu = cost["relu"]
    steps = {n: _best(conv, n)["median"] for n in NAMES}
    cost_rows = [[n, cost[n]["alone"], cost[n]["alone"] / relu["alone"], cost[n]["layer"], cost[n]["layer"] / relu["layer"]]
                 for n in NAMES]
    conv_rows = [[n, conv[n]["best_lr"], _steps(steps[n], size), steps[n] / steps["relu"],
                  *(_steps(conv[n]["per_lr"][lr]["median"], size) for lr in size.lrs)] for n in NAMES]
    high_rows = [[n, "diverged", None, None, None] if hl[n]["diverged"] else
                 [n, hl[n]["train_loss"], _worst(hl[n]["layers"], "dead"),
                  None if ACTIVATIONS[n].bounded else _worst(hl[n]["layers"], "inactive"),
                  _worst(hl[n]["layers"], "saturated")] for n in NAMES]
    return [
        Table(f"cost per forward + backward (batch {size.time_batch} x {size.time_units}), microseconds",
              ["activation", "alone", "x ReLU", "layer", "x ReLU"], cost_rows),
        Table(f"digits: steps to {100 * TARGET_ERROR:g}% train error (median of {size.seeds} seeds, evaluated every "
              f"{size.eval_every} steps; > {size.max_steps}: not reached), each at its best lr of {list(size.lrs)}",
              ["activation", "best lr", "steps", "x ReLU's steps", *(f"lr {lr:g}" for lr in size.lrs)], conv_rows),
        Table(f"names MLP (2 x 200) after {size.high_lr_steps} steps at lr {HIGH_LR}: worst hidden layer on "
              f"{PROBE:,} training examples (dead: ReLU 0, tanh/sigmoid saturated, on every example)",
              ["activation", "train loss", "dead units", "units <= 0 on every example", "saturated values"],
              high_rows)]


def _best(conv: dict, name: str) -> dict:
    return conv[name]["per_lr"][conv[name]["best_lr"]]


def _claims(result: LabResult, size: ActivationsSize, cost: dict, conv: dict, hl: dict) -> None:
    steps = {n: _best(conv, n)["median"] for n in NAMES}
    ratio = steps["tanh"] / steps["relu"]
    result.claim(f"ReLU converges about {SPEEDUP:g} times faster than tanh (Krizhevsky et al. 2012, in L6)",
                 SPEEDUP / ABOUT <= ratio <= SPEEDUP * ABOUT,
                 f"tanh {_steps(steps['tanh'], size)} steps / ReLU {_steps(steps['relu'], size)} = x{ratio:.2f} "
                 f"(bar: x{SPEEDUP / ABOUT:g} to x{SPEEDUP * ABOUT:g})")
    # slowest: the most steps; among runs that never reach the target, the highest error at the end
    slowness = {n: (steps[n], _best(conv, n)["curve"][-1][1]) for n in NAMES}
    runner_up = max((n for n in NAMES if n != "sigmoid"), key=slowness.get)
    result.claim("sigmoid trains slowest (L6: don't use sigmoid)", slowness["sigmoid"] > slowness[runner_up],
                 f"sigmoid {_steps(steps['sigmoid'], size)} steps (error {slowness['sigmoid'][1]:.3f} at the end) vs "
                 f"the slowest other, {runner_up}, {_steps(steps[runner_up], size)}")
    dead = _worst(hl["relu"]["layers"], "dead") or 0.0
    result.claim("ReLU units die at a too-high learning rate (L6: as much as 10 to 20%)", dead >= DEAD_BAR,
                 f"{100 * dead:.1f}% of the worst layer's units dead after lr {HIGH_LR} (bar >= {100 * DEAD_BAR:g}%)")
    exp_based = ("sigmoid", "tanh", "elu")
    result.claim("ReLU is cheaper to compute than the exp-based sigmoid, tanh and ELU (L6)",
                 all(cost[n]["alone"] > cost["relu"]["alone"] for n in exp_based),
                 f"alone: ReLU {cost['relu']['alone']:.0f} us vs " +
                 ", ".join(f"{n} {cost[n]['alone']:.0f}" for n in exp_based))


def run(size: ActivationsSize, result: LabResult, device, echo) -> None:
    cost = time_step(size, device)
    echo("timed (alone / layer): " + ", ".join(f"{n} {cost[n]['alone']:.0f}/{cost[n]['layer']:.0f} us" for n in NAMES))
    conv = converge(size, result, echo)
    hl = high_lr(size, result, echo)
    result.save(_cost_figure(cost, size), "activations_cost")
    result.save(_convergence_figure(conv), "activations_convergence")
    result.save(_high_lr_figure(hl), "activations_high_lr")
    result.tables.extend(_tables(size, cost, conv, hl))
    result.data = {
        "cost_us": cost,
        "convergence": {n: {"best_lr": c["best_lr"], "per_lr": {str(lr): v for lr, v in c["per_lr"].items()}}
                        for n, c in conv.items()},
        "high_lr": {n: {"train_loss": v["train_loss"], "diverged": v["diverged"],
                        "layers": [{k: x for k, x in row.items() if k != "values"} for row in v["layers"]]}
                    for n, v in hl.items()}}
    _claims(result, size, cost, conv, hl)


LABS.register("activations", order=3, item=Lab(
    "activations", "L6's activations: cost per step, steps to a target train error (ReLU vs tanh: 'six times "
    "faster'?), dead and saturated units after a high lr",
    run, default=ActivationsSize(),
    full=ActivationsSize(time_rounds=15, lrs=(0.003, 0.01, 0.03, 0.1, 0.3), seeds=5, max_steps=3000,
                         high_lr_steps=10_000)))
