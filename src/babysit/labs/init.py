"""`babysit lab init`: L6's initialization experiment (LECTURES.md §1 init rows, §3). Ten layers
of 500 units on unit-Gaussian input (L6: D = randn(1000, 500)), weights drawn by babysit's own
init schemes (nn/init.py), one forward and one backward pass. Per layer: the activations' mean,
std, saturated or zero share and histogram (Watch's own statistics), and the gradients on the
way back: of the activations, and of the weights. BatchNorm divides each unit's pre-activation by
its std over the batch, so with it the weight scale drops out: "+ BatchNorm" rows give the same
numbers for std 0.01, 1.0, Xavier or He."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from babysit.activations import ACTIVATIONS
from babysit.build import seed_everything
from babysit.labs.base import LABS, Lab, LabResult, Table
from babysit.labs.probes import layer_stats
from babysit.nn.init import init_layer
from babysit.report.plots import plt
from babysit.spec import LayerInit
from babysit.watch.stats import SATURATED

# The bars for the lecture's words (each is a claim below):
COLLAPSE = 1e-3  # std 0.01: "collapses to 0": the last layer's std under 1e-3 of the first's
SATURATED_SHARE = 0.90  # std 1.0: "units saturate": more than 90% of every layer's values past |0.97|
XAVIER_TANH_LAST = 0.1  # Xavier/tanh "stable": the last std above 0.1 (computed for 10 x 500: 0.63 -> 0.23)
STABLE_FACTOR = 2.0  # He/ReLU "stable": every layer's std within a factor 2 of the first's
RELU_SHRINK = 1 / math.sqrt(2)  # Xavier/ReLU: a ReLU halves the variance, so the std falls by 1/sqrt(2) a layer
SHRINK_TOLERANCE = 0.10  # "about": the mean per-layer ratio within 10% of 1/sqrt(2)
HIST_BINS = 50


@dataclass(frozen=True)
class InitSize:
    layers: int = 10
    units: int = 500
    examples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    activation: str
    init: LayerInit
    batchnorm: bool = False


SETTINGS = (
    Setting("tanh-0.01", "tanh, std 0.01", "tanh", LayerInit(weight="normal", std=0.01)),
    Setting("tanh-1.0", "tanh, std 1.0", "tanh", LayerInit(weight="normal", std=1.0)),
    Setting("tanh-xavier", "tanh, Xavier", "tanh", LayerInit(weight="xavier")),
    Setting("relu-xavier", "ReLU, Xavier", "relu", LayerInit(weight="xavier")),
    Setting("relu-he", "ReLU, He", "relu", LayerInit(weight="kaiming")),  # kaiming with ReLU's gain sqrt(2)
    Setting("tanh-0.01-bn", "tanh, std 0.01 + BatchNorm", "tanh", LayerInit(weight="normal", std=0.01), True),
    Setting("relu-he-bn", "ReLU, He + BatchNorm", "relu", LayerInit(weight="kaiming"), True),
)


def _network(s: Setting, size: InitSize) -> list[tuple[nn.Linear, nn.Module]]:
    blocks = []
    for _ in range(size.layers):
        linear = nn.Linear(size.units, size.units, bias=False)
        init_layer(linear, s.init, s.activation)
        # BatchNorm in training mode: each unit normalized over the batch (gamma 1, beta 0 at init)
        norm = nn.BatchNorm1d(size.units) if s.batchnorm else nn.Identity()
        blocks.append((linear, nn.Sequential(norm, ACTIVATIONS[s.activation].module())))
    return blocks


def measure(s: Setting, size: InitSize, device: torch.device) -> dict:
    """One forward and backward pass. The loss is sum(h_last * G), G unit Gaussian: a unit-std
    gradient arrives at the top, and each layer's gradient std reads as a multiple of it."""
    seed_everything(size.seed)  # the same input and weights (up to scale) for every setting
    x = torch.randn(size.examples, size.units, device=device)
    blocks = [(lin.to(device), act.to(device)) for lin, act in _network(s, size)]
    h, acts = x, []
    for lin, act in blocks:
        h = act(lin(h))
        h.retain_grad()
        acts.append(h)
    (h * torch.randn_like(h)).sum().backward()
    rows = []
    for i, (h, (lin, _)) in enumerate(zip(acts, blocks), start=1):
        rows.append({"layer": i, **layer_stats(h.detach(), s.activation),
                     "act_grad_std": h.grad.std().item(), "weight_grad_std": lin.weight.grad.std().item()})
    return {"layers": rows, "values": [h.detach().cpu() for h in acts]}


def _hist_range(s: Setting, values: list[torch.Tensor]) -> tuple[float, float]:
    if ACTIVATIONS[s.activation].bounded:
        return ACTIVATIONS[s.activation].bounded
    first = values[0]  # ReLU: the first layer is the widest in every setting; 4 std past its mean
    return 0.0, float(first.mean() + 4 * first.std())


def _setting_figure(s: Setting, m: dict):
    """L6's figure: mean and std per layer, then each layer's histogram (a row of panels)."""
    rows, values = m["layers"], m["values"]
    n = len(rows)
    fig = plt.figure(figsize=(max(12, 1.6 * n), 6))
    grid = fig.add_gridspec(2, n, height_ratios=[1.2, 1], hspace=0.4, wspace=0.3)  # tight_layout: seconds a figure
    idx = [r["layer"] for r in rows]
    mean_ax = fig.add_subplot(grid[0, :n // 2])
    std_ax = fig.add_subplot(grid[0, n // 2:])
    mean_ax.plot(idx, [r["mean"] for r in rows], "o-")
    std_ax.plot(idx, [r["std"] for r in rows], "o-")
    mean_ax.set(title="layer mean", xlabel="layer", xticks=idx)
    # from 0, with room above: a flat line reads as stable
    std_ax.set(title="layer std", xlabel="layer", xticks=idx, ylim=(0, 1.1 * max(r["std"] for r in rows)))
    lo, hi = _hist_range(s, values)
    edges = torch.linspace(lo, hi, HIST_BINS + 1)
    for i, v in enumerate(values):
        ax = fig.add_subplot(grid[1, i])
        ax.stairs(torch.histc(v.clamp(lo, hi), bins=HIST_BINS, min=lo, max=hi).numpy(), edges.numpy(), fill=True)
        ax.set_title(f"layer {i + 1}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    fig.suptitle(f"{s.label}: activations of {n} layers x {values[0].shape[1]} units "
                 f"({values[0].shape[0]} unit-Gaussian inputs)")
    return fig


def _depth_figure(results: dict, field: str, title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(9, 5))
    for s in SETTINGS:
        rows = results[s.key]["layers"]
        ax.plot([r["layer"] for r in rows], [max(r[field], 1e-30) for r in rows], "o-", label=s.label)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="layer (input -> output)", ylabel=ylabel)
    ax.legend(fontsize=8)
    return fig


def _gradient_figure(results: dict):
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    for s in SETTINGS:
        rows = results[s.key]["layers"]
        idx = [r["layer"] for r in rows]
        left.plot(idx, [max(r["act_grad_std"], 1e-30) for r in rows], "o-", label=s.label)
        right.plot(idx, [max(r["weight_grad_std"], 1e-30) for r in rows], "o-", label=s.label)
    left.set(title="activation-gradient std per layer (a unit-std gradient arrives at the top)",
             xlabel="layer (input -> output)", ylabel="std of dL/dh (log)", yscale="log")
    right.set(title="weight-gradient std per layer", xlabel="layer (input -> output)",
              ylabel="std of dL/dW (log)", yscale="log")
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ratio(rows: list[dict]) -> float:
    """The mean factor by which the std changes from one layer to the next (geometric mean)."""
    return (rows[-1]["std"] / rows[0]["std"]) ** (1 / max(len(rows) - 1, 1))


def _share(row: dict, activation: str):
    return row["saturated"] if ACTIVATIONS[activation].bounded else row["zero"]


def run(size: InitSize, result: LabResult, device: torch.device, echo) -> None:
    results = {s.key: measure(s, size, device) for s in SETTINGS}
    for s in SETTINGS:
        result.save(_setting_figure(s, results[s.key]), f"init_{s.key}")
    result.save(_depth_figure(results, "std", "activation std per layer", "std (log)"), "init_std")
    result.save(_gradient_figure(results), "init_gradients")

    rows = {k: m["layers"] for k, m in results.items()}
    result.data = {"settings": {s.key: {"label": s.label, "layers": rows[s.key]} for s in SETTINGS}}
    result.tables.append(Table(
        "activation std per layer", ["layer", *(s.key for s in SETTINGS)],
        [[i + 1, *(rows[s.key][i]["std"] for s in SETTINGS)] for i in range(size.layers)]))
    result.tables.append(Table(
        f"per setting (saturated: |tanh| > {SATURATED}; zero: ReLU outputs 0); gradients: std of dL/dh and "
        "dL/dW at the first and last layer",
        ["setting", "std first", "std last", "last/first", "per layer", "saturated/zero last",
         "dL/dh first", "dL/dh last", "dL/dW first", "dL/dW last"],
        [[s.label, r[0]["std"], r[-1]["std"], r[-1]["std"] / r[0]["std"], _ratio(r), _share(r[-1], s.activation),
          r[0]["act_grad_std"], r[-1]["act_grad_std"], r[0]["weight_grad_std"], r[-1]["weight_grad_std"]]
         for s, r in ((s, rows[s.key]) for s in SETTINGS)]))

    _claims(result, rows, size)


def _spread(rows: list[dict]) -> float:
    """The largest factor between any layer's std and the first layer's."""
    return max(max(r["std"] / rows[0]["std"], rows[0]["std"] / r["std"]) for r in rows)


def _claims(result: LabResult, rows: dict, size: InitSize) -> None:
    small, big, xt, xr, he = (rows[k] for k in ("tanh-0.01", "tanh-1.0", "tanh-xavier", "relu-xavier", "relu-he"))
    ratio = small[-1]["std"] / small[0]["std"]
    result.claim("std 0.01: the activations' std collapses toward zero layer by layer (L6)", ratio < COLLAPSE,
                 f"last/first std {ratio:.2e} (bar < {COLLAPSE:g})")
    least = min(r["saturated"] for r in big)
    result.claim("std 1.0: tanh units saturate at +-1 (L6)", least > SATURATED_SHARE,
                 f"least saturated layer {100 * least:.1f}% (bar > {100 * SATURATED_SHARE:.0f}% in every layer)")
    result.claim("Xavier with tanh: the std shrinks slowly, far from std 0.01's collapse (L6)",
                 xt[-1]["std"] > XAVIER_TANH_LAST,
                 f"std {xt[0]['std']:.2f} -> {xt[-1]['std']:.2f} (bar: last > {XAVIER_TANH_LAST}; std 0.01 "
                 f"ends at {small[-1]['std']:.1e})")
    result.claim("He with ReLU: stable with depth (L6)", _spread(he) < STABLE_FACTOR,
                 f"every layer within x{_spread(he):.2f} of the first's std {he[0]['std']:.2f} (bar x{STABLE_FACTOR:g})")
    per = _ratio(xr)
    result.claim("Xavier with ReLU: the std shrinks by about 1/sqrt(2) per layer (L6: collapses toward 0)",
                 abs(per / RELU_SHRINK - 1) < SHRINK_TOLERANCE,
                 f"x{per:.3f} per layer, {xr[0]['std']:.2f} -> {xr[-1]['std']:.3f} "
                 f"(bar: within {100 * SHRINK_TOLERANCE:.0f}% of {RELU_SHRINK:.3f})")
    labels = {s.key: s.label for s in SETTINGS}
    for key in ("tanh-0.01-bn", "relu-he-bn"):
        result.claim(f"BatchNorm keeps the activations stable whatever the init ({labels[key]})",
                     _spread(rows[key]) < STABLE_FACTOR,
                     f"every layer within x{_spread(rows[key]):.2f} of the first's std {rows[key][0]['std']:.2f} "
                     f"(bar x{STABLE_FACTOR:g})")
    # std 1.0: a saturated unit's local gradient 1 - h^2 is near 0 (under 1 - SATURATED^2), yet the
    # few unsaturated ones pass the gradient through weights of std 1: the note says which wins
    local = f"; in every layer {100 * least:.0f}%+ of the values have a local gradient 1 - h^2 < {1 - SATURATED ** 2:.2f}"
    for layers, text, note in ((small, "std 0.01: the gradients vanish on the way back (L6)", ""),
                               (big, "std 1.0: saturated units, gradients 0 (L6)", local)):
        grad = layers[0]["act_grad_std"] / layers[-1]["act_grad_std"]
        result.claim(text, grad < COLLAPSE, f"dL/dh std at layer 1 / at layer {size.layers}: {grad:.2e}, "
                     f"x{grad ** (1 / max(size.layers - 1, 1)):.2f} per layer (bar < {COLLAPSE:g}){note}")


LABS.register("init", order=1, item=Lab(
    "init", "L6's init experiment: 10 tanh/ReLU layers x 500 units at std 0.01, 1.0, Xavier, He, BatchNorm; "
    "activations and gradients per layer",
    run, default=InitSize(), full=InitSize(examples=5000)))
