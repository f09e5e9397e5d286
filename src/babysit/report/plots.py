"""The diagnostic figures of LECTURES.md §3 (MM3 and L6), from a run's record: PNG files for
`babysit plot` and the figures of the HTML report, drawn by the same functions from the same
readers (babysit.report.readers).

Each figure is one function taking what it draws and returning a matplotlib Figure, so a test
or a notebook can use them without a run directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.lines  # noqa: E402
import matplotlib.ticker  # noqa: E402

from babysit.errors import CheckpointError  # noqa: E402
from babysit.layout import METRICS, PLOTS, WATCH, make_dir, storage_error  # noqa: E402
from babysit.watch.record import read_events  # noqa: E402
from babysit.reference import DIVERGE_FACTOR, TARGET_UPDATE_LOG10 as UPDATE_RATIO_REFERENCE  # noqa: E402
from babysit.report.readers import EnsembleData, RunData, SearchData, finite  # noqa: E402
from babysit.watch.table import WatchRecord, _pct  # noqa: E402

# The 3x line is drawn when it lies within this factor of the highest point drawn; higher up it is
# named in a corner instead (on a healthy run it sits at 3x the start, a blank band over the curves).
THREE_X_SHOWN = 1.25


def _centers(lo: float, hi: float, bins: int) -> list[float]:
    width = (hi - lo) / bins
    return [lo + width * (i + 0.5) for i in range(bins)]


def _fmt_pct(v) -> str:
    return "-" if v is None else f"{_pct(v):.1f}%"


def _num(v, spec: str) -> str:
    """A statistic for a legend; NaN for one the record holds as null (a run gone non-finite)."""
    return "NaN" if finite(v) is None else format(v, spec)


def _values(values) -> list[float]:
    """Statistics to draw: null (non-finite on record) as NaN, which matplotlib leaves a gap for."""
    return [v if finite(v) is not None else float("nan") for v in values]


def activations_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for row in sample["layers"]:
        lo, hi = record.meta["layers"][row["name"]]["range"]
        extra = (f"saturated {_fmt_pct(row['saturated'])}" if row["saturated"] is not None
                 else f"zero {_fmt_pct(row['zero'])}")
        ax.plot(_centers(lo, hi, len(row["hist"])), _values(row["hist"]),
                label=f"{row['name']} ({row['kind']}): mean {_num(row['mean'], '+.2f')}, "
                      f"std {_num(row['std'], '.2f')}, {extra}")
    ax.set(title=f"activation distribution per layer, step {sample['step']}", xlabel="activation value",
           ylabel="share of values")
    ax.legend(fontsize=8)
    return fig


def _gradient_panel(ax, rows, hist_key: str, grad_range: float, title: str, label) -> None:
    """Histograms are stored in units of each gradient's own std; drawn back in gradient units."""
    for row in rows:
        hist = row.get(hist_key)
        if finite(row.get("grad_std")) is None or not hist or hist[0] is None:
            continue  # no spread to draw the histogram in (a non-finite gradient)
        xs = [c * row["grad_std"] for c in _centers(-grad_range, grad_range, len(hist))]
        ax.plot(xs, _values(hist), label=label(row))
    ax.set(title=title, xlabel="gradient value", ylabel="share of values")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    if ax.lines:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finite gradient at this step", transform=ax.transAxes, ha="center", color="red")


def activation_gradients_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _gradient_panel(ax, sample["layers"], "grad_hist", record.meta["grad_range"], f"activation-gradient distribution per layer, step {sample['step']}",
                    lambda r: f"{r['name']} ({r['kind']}): mean {_num(r['grad_mean'], '+.2e')}, "
                              f"std {_num(r['grad_std'], '.2e')}")
    return fig


def weight_gradients_figure(record: WatchRecord, sample: dict):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    # The layers Watch listed as carrying weights (embeddings are lookups, not layers to compare)
    layers = {name for name, kind in record.meta.get("order", []) if kind == "weights"}
    weights = [p for p in sample["params"] if len(p["shape"]) >= 2
               and (not layers or p["name"].removesuffix(".weight") in layers)]
    _gradient_panel(ax, weights, "hist", record.meta["grad_range"], f"weight-gradient distribution, step {sample['step']}",
                    lambda p: (f"{p['name']} {tuple(p['shape'])}: mean {_num(p['grad_mean'], '+.2e')}, "
                               f"std {_num(p['grad_std'], '.2e')}, grad:data {_num(p['grad_data'], '.2e')}"))
    return fig


def update_ratio_figure(record: WatchRecord):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = [p["name"] for p in record.samples[-1]["params"] if len(p["shape"]) >= 2]
    for name in names:
        steps, values = [], []
        for s in record.samples:
            row = next((p for p in s["params"] if p["name"] == name), None)
            if row and finite(row["update_data"]) is not None:
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
    left.plot(idx, _values(r["mean"] for r in rows), "o-")
    right.plot(idx, _values(r["std"] for r in rows), "o-")
    left.set(title="activation mean per layer", xlabel="layer (input → output)", ylabel="mean")
    right.set(title="activation std per layer", xlabel="layer (input → output)", ylabel="std")
    for ax in (left, right):
        ax.set_xticks(idx, [r["name"] for r in rows], rotation=45, fontsize=8)
    fig.suptitle(f"step {sample['step']}")
    fig.tight_layout()
    return fig


def loss_figure(data: RunData):
    """LECTURES.md §2: the train loss per log window and the val loss at evaluations (log scale),
    the lr on a second axis, the 3x-initial-loss line (item 8: a run past it has diverged) and
    the steps where the doctor's findings fired."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs, ys, label = data.train_curve()
    train = _drawable(xs, ys)
    ax.plot(*train, label=label)
    val = _drawable([e["step"] for e in data.evals], [e.get("val_loss") for e in data.evals])
    if val[0]:
        ax.plot(*val, "o-", ms=3, label="val")
    drawn = train[1] + val[1]
    first = data.first_loss()
    if first is not None:
        line = DIVERGE_FACTOR * first
        text = f"{DIVERGE_FACTOR:g}x initial loss ({line:.3g}): diverged above"
        if not drawn or line <= THREE_X_SHOWN * max(drawn):
            ax.axhline(line, color="red", lw=0.8, ls="--", label=text)
        else:  # far above every point: a line there would flatten the curves into the floor
            ax.text(0.01, 0.02, f"{text}; off the top, never approached", transform=ax.transAxes, fontsize=8,
                    color="red", va="bottom")
    fired: dict[int, list[str]] = {}
    for step, code in data.fired():
        fired.setdefault(step, []).append(code)
    for step, codes in fired.items():
        ax.axvline(step, color="darkorange", lw=0.8, ls=":")
        ax.annotate(", ".join(dict.fromkeys(codes)), (step, 0.98), xycoords=ax.get_xaxis_transform(),
                    rotation=90, va="top", ha="right", fontsize=7, color="darkorange")
    log = bool(drawn) and min(drawn) > 0
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set(title="loss", xlabel="step", ylabel="loss (log scale)" if log else "loss")
    handles, labels = ax.get_legend_handles_labels()
    steps, lrs = _drawable(*data.lr_curve())
    if lrs:
        lr_ax = ax.twinx()
        lr_ax.plot(steps, lrs, color="gray", lw=1, ls="-.", alpha=0.8, drawstyle="steps-post",
                   label="learning rate (right axis)")
        if min(lrs) > 0:
            lr_ax.set_yscale("log")
        lr_ax.set_ylabel("learning rate")
        more = lr_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if fired:
        handles.append(matplotlib.lines.Line2D([], [], color="darkorange", lw=0.8, ls=":"))
        labels.append("a finding fired")
    ax.legend(handles, labels, fontsize=8)
    return fig


def _drawable(xs, ys) -> tuple[list, list]:
    """The points with a finite value (NaN and inf are written as null or strings)."""
    pts = [(x, finite(y)) for x, y in zip(xs, ys) if finite(y) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def accuracy_figure(data: RunData):
    fig, ax = plt.subplots(figsize=(10, 3.5))
    steps = [e["step"] for e in data.evals]
    ax.plot(*_drawable(steps, [e.get("train_acc") for e in data.evals]), "o-", label="train (fixed slice)")
    ax.plot(*_drawable(steps, [e.get("val_acc") for e in data.evals]), "o-", label="val")
    ax.set(title="accuracy: a large gap means overfitting, none may mean too little capacity",
           xlabel="step", ylabel="accuracy")
    ax.legend()
    return fig


def layer_figures(record: WatchRecord, sample: dict) -> dict:
    """The per-layer figures at one sampled step (none for a model without activation modules:
    logistic regression, a bare GRU)."""
    figures = {}
    if sample["layers"]:
        figures.update(activations=activations_figure(record, sample),
                       activation_gradients=activation_gradients_figure(record, sample),
                       depth=depth_figure(record, sample))
    figures["weight_gradients"] = weight_gradients_figure(record, sample)
    return figures


def run_figures(data: RunData, step: Optional[int] = None) -> dict:
    """Every figure of a run, by name: the PNGs of `babysit plot` and the report's figures."""
    figures = {"loss": loss_figure(data)}
    if any(finite(e.get("val_acc")) is not None for e in data.evals):  # none for a regression loss
        figures["accuracy"] = accuracy_figure(data)
    if data.watch.samples:
        figures.update(layer_figures(data.watch, data.watch.sample_at(step)))
        figures["update_ratio"] = update_ratio_figure(data.watch)
    return figures


def write_plots(run_dir: Path | str, step: Optional[int] = None) -> list[Path]:
    """Every figure for a run under RUN/plots/; returns the files written."""
    run_dir = Path(run_dir)
    if not WatchRecord(run_dir).samples and not read_events(run_dir):
        raise CheckpointError(f"{run_dir} holds no run record ({WATCH} or {METRICS}): nothing to plot; "
                              "give a folder `babysit train` or a Watch(run_dir=...) wrote")
    out = make_dir(run_dir / PLOTS)
    return [save_figure(fig, out / f"{name}.png") for name, fig in run_figures(RunData.read(run_dir), step).items()]


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


def search_figure(data: SearchData, name: str):
    """LECTURES.md §4: val loss against one searched parameter (log axes for a log parameter), one
    colour per coarse-to-fine stage with its (narrowed) range shaded, pruned and failed trials
    marked along the top, the best trial's value dashed."""
    p = data.params.get(name, {})
    categorical = p.get("type") == "categorical"
    x = str if categorical else (lambda v: v)
    done = [t for t in data.trials if t.get("state") == "COMPLETE" and finite(t.get("value")) is not None
            and name in t.get("params", {})]
    values = sorted(t["value"] for t in done) or [1.0]
    top = values[min(len(values) - 1, int(0.9 * len(values)))]  # diverged trials would flatten the rest
    span = max(top - values[0], 1e-3)
    lo, hi = max(values[0] - 0.1 * span, values[0] / 2), top + 0.15 * span
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in sorted({t.get("stage", 0) for t in data.trials}):
        colour = f"C{s % 10}"
        rows = [t for t in done if t.get("stage") == s]
        steps = next((t.get("steps") for t in rows), None)
        if rows:
            ax.scatter([x(t["params"][name]) for t in rows], [min(t["value"], hi) for t in rows], color=colour,
                       s=22, zorder=3, label=f"stage {s + 1}" + (f" ({steps:,} steps)" if steps else ""))
        space = data.spaces.get(s, {}).get(name)
        if space and space.get("type") != "categorical" and space.get("low") is not None:
            ax.axvspan(space["low"], space["high"], color=colour, alpha=0.08, zorder=0)
            for edge in (space["low"], space["high"]):
                ax.axvline(edge, color=colour, lw=0.6, alpha=0.6, zorder=1)
    for state, marker, label in (("PRUNED", "x", "pruned"), ("FAIL", "v", "failed")):
        marked = [t for t in data.trials if t.get("state") == state and name in t.get("params", {})]
        if marked:
            ax.scatter([x(t["params"][name]) for t in marked], [hi] * len(marked), marker=marker, color="gray"
                       if state == "PRUNED" else "red", s=28, zorder=3, clip_on=False, label=f"{label} (no val loss)")
    if data.best and name in data.best.get("params", {}):
        ax.axvline(x(data.best["params"][name]), color="k", lw=0.8, ls="--", label="best")
    if p.get("log"):
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_ylim(lo, hi * 1.02)
    ax.set(title=f"val loss vs {name}", xlabel=name + (" (log scale)" if p.get("log") else ""),
           ylabel="validation loss (log scale)")
    ax.legend(fontsize=7)
    return fig


def search_figures(data: SearchData) -> dict:
    """One figure per searched parameter (none before a trial has run)."""
    if not any(t.get("params") for t in data.trials):
        return {}
    return {name: search_figure(data, name) for name in data.params}


def write_search_plots(out: Path | str, folder: Optional[Path | str] = None) -> list[Path]:
    """OUT/plots/<param>.png for a search folder (from its results.json)."""
    figures = search_figures(SearchData.read(out))
    folder = Path(folder) if folder else Path(out) / PLOTS
    if figures:
        folder.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, folder / f"{name.replace('.', '_')}.png") for name, fig in figures.items()]


def ensemble_figure(data: EnsembleData):
    """L7: the members' val loss over training beside the accuracy of each member and of their
    average (the ensemble's gain is the last bar's lead over the others)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    s = data.summary
    for k, m in enumerate(data.members):
        left.plot(*_drawable([e["step"] for e in m.evals], [e.get("val_loss") for e in m.evals]), "o-", ms=3,
                  label=m.run_dir.name)
    if finite(s.get("val_loss")) is not None:
        left.axhline(s["val_loss"], color="k", ls="--", lw=1, label=f"ensemble {s['val_loss']:.4f}")
    left.set(title="val loss per member", xlabel="step", ylabel="validation loss")
    left.legend(fontsize=8)
    accs = s.get("member_val_acc") or [(m.summary or {}).get("val_acc") for m in data.members]
    names = [m.run_dir.name for m in data.members] + ["ensemble"]
    bars = [a if finite(a) is not None else 0.0 for a in accs] + [finite(s.get("val_acc")) or 0.0]
    right.bar(names, bars, color=["C0"] * len(accs) + ["C2"])
    if finite(s.get("mean_member_val_acc")) is not None:
        right.axhline(s["mean_member_val_acc"], color="gray", ls=":", label="mean member")
        right.legend(fontsize=8)
    shown = [b for b in bars if b > 0] or [0.0, 1.0]
    right.set_ylim(max(0.0, min(shown) - 0.02), min(1.0, max(shown) + 0.01))
    right.set(title="val accuracy: members and their ensemble", ylabel="accuracy")
    right.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    return fig
