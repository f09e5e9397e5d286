"""The diagnostic figures of LECTURES.md §3 (MM3 and L6), from a run's record, as PNG files.

Each figure is one function taking what it draws and returning a matplotlib Figure, so a test
or a notebook can use them without a run directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from babysit.errors import CheckpointError  # noqa: E402
from babysit.layout import METRICS, PLOTS, WATCH, make_dir, storage_error  # noqa: E402
from babysit.reference import DIVERGE_FACTOR, TARGET_UPDATE_LOG10 as UPDATE_RATIO_REFERENCE  # noqa: E402
from babysit.watch.record import read_events  # noqa: E402
from babysit.watch.table import WatchRecord, _pct  # noqa: E402
SMOOTH = 200  # steps averaged per point of the loss curve (single batches are too noisy to read)


def _centers(lo: float, hi: float, bins: int) -> list[float]:
    width = (hi - lo) / bins
    return [lo + width * (i + 0.5) for i in range(bins)]


def _fmt_pct(v) -> str:
    return "-" if v is None else f"{_pct(v):.1f}%"


def activations_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for row in sample["layers"]:
        lo, hi = record.meta["layers"][row["name"]]["range"]
        extra = (f"saturated {_fmt_pct(row['saturated'])}" if row["saturated"] is not None
                 else f"zero {_fmt_pct(row['zero'])}")
        ax.plot(_centers(lo, hi, len(row["hist"])), row["hist"],
                label=f"{row['name']} ({row['kind']}): mean {row['mean']:+.2f}, std {row['std']:.2f}, {extra}")
    ax.set(title=f"activation distribution per layer, step {sample['step']}", xlabel="activation value",
           ylabel="share of values")
    ax.legend(fontsize=8)
    return fig


def _gradient_panel(ax, rows, hist_key: str, grad_range: float, title: str, label) -> None:
    """Histograms are stored in units of each gradient's own std; drawn back in gradient units."""
    for row in rows:
        hist = row.get(hist_key)
        if row.get("grad_std") is None or not hist or hist[0] is None:
            continue
        xs = [c * row["grad_std"] for c in _centers(-grad_range, grad_range, len(hist))]
        ax.plot(xs, hist, label=label(row))
    ax.set(title=title, xlabel="gradient value", ylabel="share of values")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    ax.legend(fontsize=8)


def activation_gradients_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _gradient_panel(ax, sample["layers"], "grad_hist", record.meta["grad_range"], f"activation-gradient distribution per layer, step {sample['step']}",
                    lambda r: f"{r['name']} ({r['kind']}): mean {r['grad_mean']:+.2e}, std {r['grad_std']:.2e}")
    return fig


def weight_gradients_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    # The layers Watch listed as carrying weights (embeddings are lookups, not layers to compare)
    layers = {name for name, kind in record.meta.get("order", []) if kind == "weights"}
    weights = [p for p in sample["params"] if len(p["shape"]) >= 2
               and (not layers or p["name"].removesuffix(".weight") in layers)]
    _gradient_panel(ax, weights, "hist", record.meta["grad_range"], f"weight-gradient distribution, step {sample['step']}",
                    lambda p: (f"{p['name']} {tuple(p['shape'])}: mean {p['grad_mean']:+.2e}, std {p['grad_std']:.2e}, "
                               f"grad:data {p['grad_data']:.2e}"))
    return fig


def update_ratio_figure(record: WatchRecord):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = [p["name"] for p in record.samples[-1]["params"] if len(p["shape"]) >= 2]
    for name in names:
        steps, values = [], []
        for s in record.samples:
            row = next((p for p in s["params"] if p["name"] == name), None)
            if row and row["update_data"] is not None:
                steps.append(s["step"])
                values.append(row["update_data"])
        ax.plot(steps, values, label=name)
    ax.axhline(UPDATE_RATIO_REFERENCE, color="black", linestyle="--", label="reference -3 (1e-3)")
    ax.set(title="update:data ratio over time", xlabel="step", ylabel="log10(std(update) / std(weight))")
    ax.legend(fontsize=8)
    return fig


def depth_figure(record: WatchRecord, sample: dict):
    """L6: the mean and std of each layer's activations, layer by layer from input to output."""
    rows = sample["layers"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    idx = list(range(1, len(rows) + 1))
    left.plot(idx, [r["mean"] for r in rows], "o-")
    right.plot(idx, [r["std"] for r in rows], "o-")
    left.set(title="activation mean per layer", xlabel="layer (input → output)", ylabel="mean")
    right.set(title="activation std per layer", xlabel="layer (input → output)", ylabel="std")
    for ax in (left, right):
        ax.set_xticks(idx, [r["name"] for r in rows], rotation=45, fontsize=8)
    fig.suptitle(f"step {sample['step']}")
    fig.tight_layout()
    return fig


def _smooth(steps: list[int], values: list[float], window: int) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i in range(0, len(values) - window + 1, window):
        chunk = [v for v in values[i:i + window] if v == v]
        if chunk:
            xs.append(steps[i + window - 1])
            ys.append(sum(chunk) / len(chunk))
    return xs, ys


def loss_figure(record: WatchRecord, run_dir: Path):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if record.losses:
        window = max(1, min(SMOOTH, len(record.losses) // 50))
        xs, ys = _smooth(record.loss_steps, record.losses, window)
        ax.plot(xs, ys, label=f"train (mean of {window} steps)")
    else:
        train = read_events(run_dir, "train")
        ax.plot([e["step"] for e in train], [e["train_loss"] for e in train], label="train (log window mean)")
    evals = read_events(run_dir, "eval")
    if evals:
        ax.plot([e["step"] for e in evals], [e["val_loss"] for e in evals], "o-", label="val")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set(title="loss", xlabel="step", ylabel="cross-entropy (log scale)")
    ax.legend()
    return fig


def accuracy_figure(run_dir: Path):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    evals = read_events(run_dir, "eval")
    steps = [e["step"] for e in evals]
    ax.plot(steps, [e.get("train_acc") for e in evals], "o-", label="train (fixed slice)")
    ax.plot(steps, [e["val_acc"] for e in evals], "o-", label="val")
    ax.set(title="accuracy: a large gap means overfitting, none may mean too little capacity",
           xlabel="step", ylabel="accuracy")
    ax.legend()
    return fig


def write_plots(run_dir: Path | str, step: Optional[int] = None) -> list[Path]:
    """Every figure for a run under RUN/plots/; returns the files written."""
    run_dir = Path(run_dir)
    record = WatchRecord(run_dir)
    if not record.samples and not read_events(run_dir):
        raise CheckpointError(f"{run_dir} holds no run record ({WATCH} or {METRICS}): nothing to plot; "
                              "give a folder `babysit train` or a Watch(run_dir=...) wrote")
    out = make_dir(run_dir / PLOTS)
    figures = {}
    if record.samples:
        sample = record.sample_at(step)
        if sample["layers"]:  # none for a model without activation modules (logistic regression, a bare GRU)
            figures.update({
                "activations": activations_figure(record, sample),
                "activation_gradients": activation_gradients_figure(record, sample),
                "depth": depth_figure(record, sample),
            })
        figures.update({
            "weight_gradients": weight_gradients_figure(record, sample),
            "update_ratio": update_ratio_figure(record),
        })
    figures["loss"] = loss_figure(record, run_dir)
    if any("val_acc" in e for e in read_events(run_dir, "eval")):  # none for a regression loss
        figures["accuracy"] = accuracy_figure(run_dir)
    written = []
    for name, fig in figures.items():
        written.append(save_figure(fig, out / f"{name}.png"))
    return written


def save_figure(fig, path: Path) -> Path:
    """The figure as a PNG at `path` (a StorageError naming it when it cannot be written), closed."""
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise storage_error(path, exc) from None
    finally:
        plt.close(fig)
    return path


def lr_find_figure(result):
    """The lr range test (babysit.preflight.lr_find.LRFindResult): smoothed loss against lr."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(result.lrs, result.losses, label="smoothed loss")
    ax.axvspan(*result.falling, color="green", alpha=0.12, label="loss falls")
    ax.axvline(result.suggested, color="green", linestyle="--", label=f"suggested {result.suggested:.1e}")
    if result.stopped_at:
        ax.axvline(result.stopped_at, color="red", linestyle=":", label=f"3x rule at {result.stopped_at:.1e}")
    ax.set_xscale("log")
    # the point that tripped the 3x rule would flatten everything else
    ax.set_ylim(min(result.losses) * 0.95, result.losses[0] * DIVERGE_FACTOR * 1.05)
    ax.set(title="learning-rate range test", xlabel="learning rate (log scale)", ylabel="loss")
    ax.legend()
    return fig
