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

from babysit.layout import METRICS, PREFLIGHT, SPEC, SUMMARY, WATCH
from babysit.losses import kind_of
from babysit.spec import load_spec
from babysit.watch.record import read_events
from babysit.watch.table import WatchRecord
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
    # What the loss is: cross_entropy, nll, bce, bce_with_logits, mse, other; None: unknown,
    # taken as cross-entropy (the ln(C) rules apply to the softmax losses only).
    loss_kind: Optional[str] = None
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

    def checked_samples(self) -> list[dict]:
        """The samples the activation rules judge: the initialization and the latest (a problem is
        either set up by the init or grown during training)."""
        if not self.samples:
            return []
        return [self.first_sample] if len(self.samples) == 1 else [self.first_sample, self.last_sample]

    def _update_values(self, samples: list[dict], finite: bool = True):
        """(weight name, log10 update:data) of every weight matrix in `samples`."""
        weights = {f"{n}.weight" for n in self.weight_layers()}
        for s in samples:
            for p in s["params"] or []:
                u = p.get("update_data")
                if p["name"] in weights and u is not None and (math.isfinite(u) or not finite):
                    yield p["name"], u

    def updates(self) -> dict[str, float]:
        """Median log10 update:data per weight matrix over the samples after the first (the first
        alone when there is no other)."""
        per: dict[str, list[float]] = {}
        for name, u in self._update_values(self.samples[1:] or self.samples):
            per.setdefault(name, []).append(u)
        return {n: sorted(v)[len(v) // 2] for n, v in per.items()}

    def median_update(self) -> Optional[float]:
        """The median log10 update:data over every weight matrix and sample after the first."""
        vals = sorted(u for _, u in self._update_values(self.samples[1:], finite=False))
        return vals[len(vals) // 2] if vals else None

    def feeding_weights(self) -> dict[str, str]:
        """Activation layer -> the weight matrix feeding it (the last weight layer before it)."""
        out, last = {}, None
        for name, kind in self.order:
            if kind == "weights":
                last = f"{name}.weight"
            elif last is not None:
                out[name] = last
        return out

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
        """From a run's watch.jsonl, metrics.jsonl, preflight.json and spec.yaml."""
        run_dir = Path(run_dir)
        if not (run_dir / WATCH).is_file() and not (run_dir / METRICS).is_file():
            raise FileNotFoundError(f"{run_dir} holds no run record ({WATCH} or {METRICS}); "
                                    "pass the directory a `babysit train` or a Watch(run_dir=...) wrote")
        record = WatchRecord(run_dir)
        samples = keep_samples(record.samples)
        evals = [{k: v for k, v in e.items() if k != "kind"} for e in read_events(run_dir, "eval")]
        path = run_dir / PREFLIGHT
        preflight = json.loads(path.read_text()) if path.is_file() else []
        spec = load_spec(run_dir / SPEC) if (run_dir / SPEC).is_file() else None
        b = spec.train.batch_size if spec is not None else None
        extra.setdefault("batch_size", b if isinstance(b, int) else None)
        if spec is not None:
            extra.setdefault("loss_kind", kind_of(spec.loss))
        extra.setdefault("finished", (run_dir / SUMMARY).is_file())
        return cls(losses=[_num(v) for v in record.losses], loss_start=record.loss_steps[0] if record.loss_steps else 1,
                   lrs=record.lrs, samples=samples, order=record.meta.get("order", []), evals=evals,
                   preflight=preflight, **extra)
