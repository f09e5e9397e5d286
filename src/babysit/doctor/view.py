"""RunView: the read-only picture of a run that rules look at, built the same way from a live
Watch (a user's loop, or the Trainer's own Watch) and from a finished run's files, so both paths
give the same findings."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from babysit.doctor.findings import FINDINGS
from babysit.train.trainer import PREFLIGHT, SUMMARY
from babysit.watch.record import METRICS, read_events
from babysit.watch.watch import Watch

# Rules see the first sample (the initialization) and the latest KEEP_SAMPLES, as a live Watch
# with a run directory keeps them; a run read from disk is cut the same way.
KEEP_SAMPLES = Watch.KEEP_SAMPLES


def keep_samples(samples: list[dict]) -> list[dict]:
    """The first sample and the latest KEEP_SAMPLES."""
    return samples[:1] + samples[1:][-KEEP_SAMPLES:]


def _num(v) -> float:
    """A recorded number back to a float: the record writes NaN as null and Inf as a string."""
    if v is None:
        return math.nan
    return float(v)


@dataclass
class RunView:
    losses: list[float] = field(default_factory=list)  # every step's training loss from loss_start
    loss_start: int = 1  # the step of losses[0]; a resumed run's Watch starts later (no init loss)
    lrs: list[float] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)  # {"step", "layers": [...], "params": [...], "grad_norm"}
    order: list = field(default_factory=list)  # [[name, kind | 'weights']] in model order (Watch meta)
    evals: list[dict] = field(default_factory=list)  # {"step", "val_loss", "train_probe_loss", ...}
    model: Optional[nn.Module] = None
    batch_size: Optional[int] = None
    num_classes: Optional[int] = None
    preflight: list[dict] = field(default_factory=list)  # CheckResult.as_dict() rows
    finished: bool = False  # the run ended (rules about the end state, e.g. underfitting, wait for it)
    # The loss at step 1 when `losses` starts later: the stop rules' incremental views, and a
    # repair attempt that continues from a checkpoint (its reference is the run's own start).
    first_loss: Optional[float] = None

    # -- derived -----------------------------------------------------------------------------
    @property
    def first_sample(self) -> Optional[dict]:
        return self.samples[0] if self.samples else None

    @property
    def last_sample(self) -> Optional[dict]:
        return self.samples[-1] if self.samples else None

    def weight_layers(self) -> list[str]:
        """Names of the layers with a weight matrix or kernel (embeddings excluded), input first."""
        return [n for n, k in self.order if k == "weights"]

    def output_layer(self) -> Optional[str]:
        layers = self.weight_layers()
        return layers[-1] if layers else None

    def classes(self) -> Optional[int]:
        """C for ln(C): given, or the output layer's number of rows."""
        if self.num_classes:
            return self.num_classes
        out = self.output_layer()
        for s in self.samples[:1]:
            for p in s["params"] or []:
                if p["name"] == f"{out}.weight":
                    return p["shape"][0]
        return None

    # -- builders ----------------------------------------------------------------------------
    @classmethod
    def from_watch(cls, watch, **extra) -> "RunView":
        """From a live Watch (flushes it first: the one host sync)."""
        watch.flush()
        samples = list(watch.samples)
        first = getattr(watch, "first_sample", None)
        if first is not None and (not samples or samples[0]["step"] != first["step"]):
            samples.insert(0, first)
        extra.setdefault("batch_size", getattr(watch, "batch_size", None))
        return cls(losses=list(watch.losses), loss_start=watch.steps - len(watch.losses) + 1,
                   lrs=list(watch.lrs), samples=samples,
                   order=watch.order, model=extra.pop("model", watch.model), **extra)

    @classmethod
    def from_run_dir(cls, run_dir: Path | str, **extra) -> "RunView":
        """From a run's watch.jsonl, metrics.jsonl, preflight.json / findings.json and spec.yaml."""
        from babysit.watch.watch import WATCH_FILE
        run_dir = Path(run_dir)
        if not (run_dir / WATCH_FILE).is_file() and not (run_dir / METRICS).is_file():
            raise FileNotFoundError(f"{run_dir} holds no run record ({WATCH_FILE} or {METRICS}); "
                                    "pass the directory a `babysit train` or a Watch(run_dir=...) wrote")
        events = read_events(run_dir / WATCH_FILE)
        metas = [e for e in events if e["kind"] == "meta"]
        losses, lrs, samples, start = [], [], [], None
        for e in events:
            if e["kind"] == "steps":
                start = e["start"] if start is None else start
                losses += [_num(v) for v in e["loss"]]
                lrs += e["lr"] or []
            elif e["kind"] == "sample":
                samples.append({k: v for k, v in e.items() if k != "kind"})
        samples = keep_samples(samples)
        evals = [{k: v for k, v in e.items() if k != "kind"} for e in read_events(run_dir, "eval")]
        preflight = []
        for name in (PREFLIGHT, FINDINGS):
            path = run_dir / name
            if path.is_file() and not preflight:
                data = json.loads(path.read_text())
                preflight = data if isinstance(data, list) else data.get("preflight", [])
        batch = None
        if (run_dir / "spec.yaml").is_file():
            from babysit.spec import load_spec
            b = load_spec(run_dir / "spec.yaml").train.batch_size
            batch = b if isinstance(b, int) else None
        extra.setdefault("batch_size", batch)
        extra.setdefault("finished", (run_dir / SUMMARY).is_file())
        return cls(losses=losses, loss_start=start or 1, lrs=lrs, samples=samples, order=metas[-1].get("order", []) if metas else [],
                   evals=evals, preflight=preflight, **extra)
