"""Reading a run's watch record back: the samples, and the per-layer table of `babysit stats`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from babysit.errors import CheckpointError
from babysit.layout import WATCH
from babysit.watch.record import read_events

COLUMNS = ("layer", "kind", "mean", "std", "saturation_pct", "dead_pct", "grad_std", "weight",
           "grad_data", "update_data")


class WatchRecord:
    """Everything Watch wrote for one run (nothing when it wrote nothing): meta, per-step losses
    and lrs, and the sampled steps."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / WATCH
        events = read_events(self.path)
        metas = [e for e in events if e["kind"] == "meta"]
        self.meta = metas[-1] if metas else {}
        self.samples = [{k: v for k, v in e.items() if k != "kind"} for e in events if e["kind"] == "sample"]
        self.losses, self.lrs, self.loss_steps, self.grad_checks = [], [], [], []
        self.loss_graph: Optional[dict] = None
        for e in events:
            if e["kind"] == "steps":
                self.losses += e["loss"]
                self.lrs += e["lr"] or []
                self.loss_steps += list(range(e["start"], e["start"] + len(e["loss"])))
            elif e["kind"] == "grad_checks":
                self.grad_checks += e["checks"]
            elif e["kind"] == "loss_graph":
                self.loss_graph = {k: v for k, v in e.items() if k not in ("kind", "step")}

    def sample_at(self, step: Optional[int] = None) -> dict:
        """The sample at `step`, or the last one at or before it; the last sample when None."""
        if not self.samples:
            raise CheckpointError(f"{self.path} holds no sampled step (is the run trained with watch.enabled: false, "
                                  "or not started yet?)")
        before = [s for s in self.samples if step is None or s["step"] <= step]
        if not before:
            raise CheckpointError(f"no sample at or before step {step}; the first is at step {self.samples[0]['step']}")
        return before[-1]


def _pct(v):
    return None if v is None else 100.0 * v


def weight_param(layer: str, shapes: dict) -> Optional[str]:
    """The parameter through which `layer` feeds what follows: `layer.weight`, else its own first
    matrix (an RNN's `weight_ih_l0`, attention's `in_proj_weight`). shapes: parameter name -> shape."""
    if f"{layer}.weight" in shapes:
        return f"{layer}.weight"
    prefix = f"{layer}." if layer else ""
    return next((n for n, shape in shapes.items() if n.startswith(prefix) and "." not in n[len(prefix):]
                 and len(shape) >= 2), None)


def layer_rows(record: WatchRecord, sample: dict) -> list[dict]:
    """One row per activation layer, with the statistics of the weight that feeds it; layers with
    weights and no activation after them (the output layer) get a row of their own; then every
    parameter no row showed (biases, gains, a second RNN matrix), kind `param`."""
    layers = {row["name"]: row for row in sample["layers"]}
    params = {row["name"]: row for row in sample["params"]}
    shapes = {n: row.get("shape") or [] for n, row in params.items()}
    order = record.meta.get("order") or [[n, row["kind"]] for n, row in layers.items()]
    rows, pending = [], None

    def weight(layer):
        return params.get(weight_param(layer, shapes)) if layer is not None else None

    for name, kind in order:
        if kind == "weights":
            if pending is not None:
                rows.append(_row(pending, "linear", None, weight(pending)))
            pending = name
            continue
        rows.append(_row(name, kind, layers.get(name), weight(pending)))
        pending = None
    if pending is not None:
        rows.append(_row(pending, "linear", None, weight(pending)))
    shown = {r["weight"] for r in rows}
    rows += [_row(n, "param", None, p) for n, p in params.items() if n not in shown]
    return rows


def _row(name: str, kind: str, act: Optional[dict], weight: Optional[dict]) -> dict:
    act = act or {}
    weight = weight or {}
    return {
        "layer": name, "kind": kind, "mean": act.get("mean"), "std": act.get("std"),
        "saturation_pct": _pct(act.get("saturated")), "dead_pct": _pct(act.get("dead")),
        "grad_std": act.get("grad_std"),
        "weight": weight.get("name") if weight else None,
        "grad_data": weight.get("grad_data"), "update_data": weight.get("update_data"),
    }


def format_table(rows: list[dict], step: int) -> str:
    def f(v, spec):
        width = int(spec.split(".")[0])
        return f"{'-':>{width}}" if v is None else format(v, spec)

    # the name columns as wide as the longest name (at least the headings' old widths)
    lw = max([13] + [len(r["layer"]) for r in rows]) + 1
    ww = max([15] + [len(r["weight"] or "-") for r in rows]) + 1
    head = (f"{'layer':<{lw}}{'kind':<11}{'mean':>9}{'std':>8}{'sat %':>8}{'dead %':>8}{'grad std':>10}"
            f"  {'weight':<{ww}}{'grad:data':>10}{'upd:data':>9}")
    lines = [f"step {step}", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['layer']:<{lw}}{r['kind']:<11}{f(r['mean'], '9.4f')}{f(r['std'], '8.4f')}"
                     f"{f(r['saturation_pct'], '8.2f')}{f(r['dead_pct'], '8.2f')}{f(r['grad_std'], '10.2e')}"
                     f"  {(r['weight'] or '-'):<{ww}}{f(r['grad_data'], '10.2e')}{f(r['update_data'], '9.2f')}")
    return "\n".join(lines)
