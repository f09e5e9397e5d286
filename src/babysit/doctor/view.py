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
from babysit.watch.table import WatchRecord, weight_param
from babysit.watch.watch import Watch

# Rules see the first sample (the initialization) and the latest KEEP_SAMPLES, as a live Watch
# with a run directory keeps them; a run read from disk is cut the same way.
KEEP_SAMPLES = Watch.KEEP_SAMPLES
# Losses whose first value is about ln(C) for diffuse outputs: the ln(C) rules judge only these.
CLASSIFICATION = ("cross_entropy", "nll")
# Converged (the slow-progress rules stay silent): the recent train loss, the median of the last
# CONVERGED_TAIL of the steps (at least MIN_TAIL), below CONVERGED_CE x ln(C) for a classification
# loss, or below CONVERGED_REL x the first loss for any other (an MSE run starts near the targets'
# second moment when the output layer starts small; the issue's "1e-3 of the targets' variance").
# Measured on the healthy user loops of benchmarks/outside_cases.py, seeds 0-2 (recent / ln(C)):
# tanh MLP fit by SGD 1.6e-5 to 2.6e-5, pytorch/examples' MNIST recipe 4.5e-5 to 1.6e-4, a GRU
# 0.009 and 0.013 (its third seed, still learning, 0.81); healthy runs still learning 0.056 to 1.0;
# the broken programs' lowest 0.13. MSE regression: 1.4e-3 to 2.4e-3 of its first loss (not
# converged, and no rule fires on it). A loss flat after a drop is not converged: softmax before
# the cross-entropy stalls at 1.46 = 0.63 x ln(10).
CONVERGED_CE, CONVERGED_REL = 0.02, 1e-3
# The update:data rules read the samples from max(SETTLE_STEPS, SETTLED x the last sampled step)
# on: adaptive optimizers start with large steps (pytorch/examples' MNIST recipe, Adadelta at lr
# 1.0: fc1 at 10^-0.66 at step 1, -1.22 at 10, -1.49 at 20, -2.07 at 50, then about -2), and
# Watch samples the start densely (steps 2-100), which would outvote the rest of a short run.
# For a run of 2,000 steps or more at every=200 this is every regular sample, as before.
SETTLE_STEPS, SETTLED = 50, 0.1
CONVERGED_TAIL, MIN_TAIL = 0.05, 10


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
    # What the loss is: cross_entropy | nll | bce | bce_with_logits | mse | other; None: unknown,
    # judged as the cross-entropy. A user's loop: read off the loss's graph (loss_graph).
    loss_kind: Optional[str] = None
    loss_graph: Optional[dict] = None  # watch/graph.py's reading: the loss, what feeds it
    grad_checks: list = field(default_factory=list)  # [step, gradients left from before] (watch/cleared.py)

    # -- derived -----------------------------------------------------------------------------
    @property
    def first_sample(self) -> Optional[dict]:
        return self.samples[0] if self.samples else None

    @property
    def last_sample(self) -> Optional[dict]:
        return self.samples[-1] if self.samples else None

    def classification(self) -> bool:
        """A softmax-classification loss (or an unknown one): the ln(C) rules apply."""
        return self.loss_kind is None or self.loss_kind in CLASSIFICATION

    def converged(self) -> bool:
        """The recent train loss sits near its minimum (CONVERGED_CE / CONVERGED_REL): small updates
        and a flat curve are then the goal reached, not a problem."""
        finite = [x for x in self.losses if math.isfinite(x)]
        if len(finite) < MIN_TAIL:
            return False
        tail = sorted(finite[-max(MIN_TAIL, int(CONVERGED_TAIL * len(finite))):])
        recent = tail[len(tail) // 2]
        if self.classification():
            c = self.classes()
            return bool(c and c > 1) and recent < CONVERGED_CE * math.log(c)
        first = self.first_loss if self.first_loss is not None else (finite[0] if self.loss_start == 1 else None)
        return first is not None and first > 0 and recent < CONVERGED_REL * first

    def _param_shapes(self) -> dict:
        return {p["name"]: p.get("shape") or [] for s in self.samples[:1] for p in s["params"] or []}

    def weight_of(self, layer: Optional[str]) -> Optional[str]:
        """The parameter through which a weight layer feeds what follows (`layer.weight`, an RNN's
        `weight_ih_l0`, attention's `in_proj_weight`); `layer.weight` when the samples hold none."""
        if layer is None:
            return None
        return weight_param(layer, self._param_shapes()) or f"{layer}.weight"

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
        weights = {self.weight_of(n) for n in self.weight_layers()}
        for s in samples:
            for p in s["params"] or []:
                u = p.get("update_data")
                if p["name"] in weights and u is not None and (math.isfinite(u) or not finite):
                    yield p["name"], u

    def settled_samples(self) -> list[dict]:
        """The samples after the first from max(SETTLE_STEPS, SETTLED x the last sampled step) on."""
        last = self.samples[-1]["step"] if self.samples else 0
        return [s for s in self.samples[1:] if s["step"] >= max(SETTLE_STEPS, SETTLED * last)]

    def updates(self) -> dict[str, float]:
        """Median log10 update:data per weight matrix over the settled samples (the first alone
        when there is no other)."""
        per: dict[str, list[float]] = {}
        for name, u in self._update_values(self.settled_samples() or self.samples):
            per.setdefault(name, []).append(u)
        return {n: sorted(v)[len(v) // 2] for n, v in per.items()}

    def median_update(self) -> Optional[float]:
        """The median log10 update:data over every weight matrix and settled sample."""
        vals = sorted(u for _, u in self._update_values(self.settled_samples(), finite=False))
        return vals[len(vals) // 2] if vals else None

    def feeding_weights(self) -> dict[str, str]:
        """Activation layer -> the weight matrix feeding it (the last weight layer before it)."""
        out, last = {}, None
        for name, kind in self.order:
            if kind == "weights":
                last = self.weight_of(name)
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
        shape = self._param_shapes().get(self.weight_of(self.output_layer()))
        return shape[0] if shape else None

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
        graph = getattr(watch, "loss_graph", None)
        extra.setdefault("loss_graph", graph)
        extra.setdefault("loss_kind", graph["loss"] if graph else None)
        extra.setdefault("grad_checks", list(getattr(watch, "grad_checks", [])))
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
        extra.setdefault("loss_graph", record.loss_graph)
        extra.setdefault("loss_kind", record.loss_graph["loss"] if record.loss_graph else None)
        extra.setdefault("grad_checks", record.grad_checks)
        return cls(losses=[_num(v) for v in record.losses], loss_start=record.loss_steps[0] if record.loss_steps else 1,
                   lrs=record.lrs, samples=samples, order=record.meta.get("order", []), evals=evals,
                   preflight=preflight, **extra)
