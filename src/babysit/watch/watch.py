"""Watch: per-layer statistics from any nn.Module, in the Trainer or in a user's own loop.

    watch = babysit.Watch(model, optimizer)       # nothing else in the loop changes
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watch.step(loss)

Cost model. Every step: the loss is kept as a device tensor and the lr as a float (no sync).
Every `every` steps (and at step 1, to see the initialization) one step is sampled: hooks are
attached just before it and removed right after, so unsampled steps run no hook at all. The
sampled numbers stay on the device until a flush fetches them all in one transfer. The start is
sampled densely (EARLY_STEPS), so that a loop of a few hundred steps is seen more than twice.

`watch.step` is called once per optimizer step (with gradient accumulation: after the step, not
after each micro-batch). What a sampled step records: probe.py (activation modules and functions,
the order layers run in, the model's input); at the first one, the loss's graph (graph.py); from
each, whether gradients are cleared between optimizer steps (cleared.py).
"""
from __future__ import annotations

import warnings
from collections import deque
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from babysit.activations import kind_of, lookup
from babysit.layout import WATCH
from babysit.watch import stats as S
from babysit.watch.cleared import ClearCheck
from babysit.watch.graph import read_loss_graph
from babysit.watch.probe import Probe, describe, has_weights
from babysit.watch.record import Record

# Sampled besides every `every`-th step: the initialization, then a log scale up to 100 (a
# 300-step loop at every=200 had two samples; now it has nine). Seven extra samples in a run.
EARLY_STEPS = frozenset((1, 2, 5, 10, 20, 50, 100))


class Watch:
    KEEP_SAMPLES = 100

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, every: int = 200,
                 run_dir: Optional[Path | str] = None, bins: int = S.BINS, flush_every: int = 1000,
                 start_step: int = 0, grad_norm_every_step: bool = False, early: bool = True):
        """run_dir: where watch.jsonl goes (None: keep samples in memory only). start_step: the
        step a resumed run continues from; records after it are dropped so nothing counts twice.
        early: also sample EARLY_STEPS (a user's short loop); the Trainer keeps its spec's schedule.
        grad_norm_every_step: the global gradient norm of every step, not only of sampled ones;
        it reads every gradient every step, measured at 18% of a makemore-deep step on a CPU
        (benchmarks/watch_overhead.py --grad-norm-every-step), hence off by default."""
        if every < 1:
            raise ValueError(f"every must be >= 1 (sample one step in `every`), got {every}")
        self.model, self.optimizer, self.every, self.bins = model, optimizer, every, bins
        self.early = EARLY_STEPS if early else frozenset((1,))
        self.flush_every = flush_every
        self.modules = describe(model)
        self.kinds = {name: kind for name, _, kind, _, _ in self.modules if kind is not None}
        # Definition order until the first sampled forward shows the order layers run in.
        self.order = self._module_order(model)
        self._order_seen = False
        # The function mode costs a Python call per op of the sampled forward: once a recorded
        # forward called no activation function, later samples go without it.
        self._functions = True
        self.params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self._param_stats = S.ParameterStats([p for _, p in self.params], bins) if self.params else None
        self._clear = ClearCheck([p for _, p in self.params], optimizer)
        self.steps = start_step
        # Fetched samples, newest last. With a run_dir they are on disk, and memory keeps the latest
        # KEEP_SAMPLES only (a 200,000-step run samples 1,000 times, histograms and all).
        self.samples: deque[dict] = deque(maxlen=None if run_dir is None else self.KEEP_SAMPLES)
        self._pending: list[dict] = []  # sampled this window, still on the device
        self._losses: list[torch.Tensor] = []
        self._lrs: list[float] = []
        self._norms: Optional[list[torch.Tensor]] = [] if grad_norm_every_step else None
        self.grad_norms: list[float] = []
        self._window_start = start_step + 1
        self._probe: Optional[Probe] = None  # attached: the next step is sampled
        self._before: Optional[torch.Tensor] = None
        self.record = Record(run_dir, WATCH) if run_dir is not None else None
        if self.record:
            self.record.open(keep_until_step=start_step or None)
            self._log_meta(start_step)
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.grad_checks: list[list] = []  # [step, gradients left from before] (cleared.py)
        self.loss_graph: Optional[dict] = None  # graph.py's reading of the loss, once it has one
        self.first_sample: Optional[dict] = None  # the initialization, kept for the doctor's rules
        self.batch_size: Optional[int] = None  # read off the first recorded activation (batch norm rules)
        self._said_no_activation = False
        if self._is_sampled(self.steps + 1):
            self._arm()  # step 1 is always sampled: the state at initialization

    def _log_meta(self, step: int) -> None:
        self.record.log("meta", step, every=self.every, bins=self.bins, grad_range=S.GRAD_RANGE,
                        layers={n: {"kind": k, "range": lookup(k).value_range} for n, k in self.kinds.items()},
                        order=self.order)

    @staticmethod
    def _module_order(model: nn.Module) -> list[list[str]]:
        """[name, activation kind | 'weights'] in definition order: lets a reader of the record
        pair each activation with the layer that feeds it, without the model. The first sampled
        forward replaces it with the order in which layers run."""
        order = []
        for name, m in model.named_modules():
            kind = kind_of(m)
            if kind is not None:
                order.append([name, kind])
            elif has_weights(m):
                order.append([name, "weights"])
        # an activation that holds its own weights (Maxout) comes after them: they feed it
        for entry in [e for e in order if e[1] != "weights"]:
            inside = [i for i, (name, _) in enumerate(order) if name.startswith(entry[0] + ".")]
            if inside:
                order.remove(entry)
                order.insert(inside[-1], entry)  # after its last weight layer (indices moved by one)
        return order

    # -- sampling ----------------------------------------------------------------------------
    def _is_sampled(self, step: int) -> bool:
        return step in self.early or step % self.every == 0

    @property
    def sampling(self) -> bool:
        """The next step is sampled (hooks attached): a captured Trainer runs it eagerly."""
        return self._probe is not None

    def sample_next(self) -> None:
        """Sample the next step too, whatever the schedule (a run about to stop takes a last look)."""
        if self._probe is None:
            self._arm()

    def _arm(self) -> None:
        self._probe = Probe(self.modules, record_order=not self._order_seen, functions=self._functions)
        self._probe.attach()
        self._before = self._param_stats.flat() if self._param_stats else None
        self._clear.start(self.steps + 1)

    def _collect(self) -> None:
        """Statistics of the sampled step, on the device: layers of one kind and shape are stacked
        and reduced together; parameters all at once."""
        probe, self._probe = self._probe, None
        captured = probe.captured
        if probe.ran and probe.functions:
            self._functions = probe.functions_seen
        self.batch_size = probe.batch_size if probe.batch_size is not None else self.batch_size
        new_kinds = {n: k for n, (k, _) in captured.items() if n not in self.kinds}
        self.kinds.update(new_kinds)
        if probe.record_order and probe.order:
            self.order, self._order_seen = probe.order, True
        if self.record and (new_kinds or probe.record_order and probe.order):
            self._log_meta(self.steps)  # the reader takes the last meta
        if probe.ran and not captured and not self._said_no_activation:
            self._said_no_activation = True
            warnings.warn(f"Watch: no activation of {type(self.model).__name__} could be recorded at step "
                          f"{self.steps} (no activation module, and none of the functions in "
                          "babysit.activations called inside its forward); the rules that read activations "
                          "stay silent, parameters and the loss are still watched", stacklevel=3)
        groups: dict[tuple, list[str]] = {}
        for name, (kind, h) in captured.items():
            groups.setdefault((kind, tuple(h.shape)), []).append(name)
        acts, grads = {}, {}
        for (kind, _), names in groups.items():
            acts.update(zip(names, S.activation_stats(torch.stack([captured[n][1] for n in names]), kind,
                                                      self.bins)))
            have_grad = [n for n in names if n in probe.grads]
            if have_grad:
                grads.update(zip(have_grad, S.gradient_stats(torch.stack([probe.grads[n] for n in have_grad]),
                                                             self.bins)))
        no_grad = torch.full((len(S.ACT_GRAD_FIELDS) + self.bins,), float("nan"))
        order = [n for n in captured if n in acts]  # the order they ran in, not group order
        sample = {"step": self.steps, "params": None, "layers": {n: acts[n] for n in order},
                  "grads": {n: grads.get(n, no_grad.to(acts[n].device)) for n in order},
                  "kinds": {n: captured[n][0] for n in order},
                  "shapes": {n: list(captured[n][1].shape[1:]) for n in order},  # per example
                  "inputs": probe.inputs}
        if self._param_stats is not None:
            sample["params"] = self._param_stats(self._before)  # (parameters, fields + bins)
            sample["grad_norm"] = self._param_stats.grad_norm
        else:
            sample["grad_norm"] = torch.full((), float("nan"))
        self._pending.append(sample)
        self._before = None

    # -- the per-step call -------------------------------------------------------------------
    def step(self, loss: Optional[torch.Tensor] = None) -> None:
        """Call once per optimizer step, after optimizer.step()."""
        self.steps += 1
        if loss is not None:
            self._losses.append(loss.detach() if loss.requires_grad else loss)  # the Trainer's is detached
        if self.optimizer is not None:
            self._lrs.append(self.optimizer.param_groups[0]["lr"])
        if self._norms is not None:
            grads = [p.grad for _, p in self.params if p.grad is not None]
            if grads:
                self._norms.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        if self._probe is not None:  # this step was sampled
            self._probe.detach()
            if self.loss_graph is None and isinstance(loss, torch.Tensor) and loss.grad_fn is not None:
                self.loss_graph = read_loss_graph(loss)  # while the probe's tags are on the graph
                if self.record:
                    self.record.log("loss_graph", self.steps, **self.loss_graph)
            self._collect()
        self._clear.tick(self.steps)
        if self._is_sampled(self.steps + 1):
            self._arm()
        if self.steps % self.flush_every == 0:
            self.flush()

    # -- fetching ----------------------------------------------------------------------------
    def flush(self) -> None:
        """The one host sync of a window: every pending number comes over in one transfer each."""
        if self._losses:
            losses = torch.stack(self._losses).float().cpu().tolist()
            norms = torch.stack(self._norms).cpu().tolist() if self._norms else None
            self.losses.extend(losses)
            self.lrs.extend(self._lrs)
            self.grad_norms.extend(norms or [])
            if self.record:
                self.record.log("steps", self.steps, start=self._window_start, loss=losses,
                                lr=self._lrs or None, grad_norm=norms)
        self._losses, self._lrs, self._window_start = [], [], self.steps + 1
        if self._norms is not None:
            self._norms = []
        checks = self._clear.fetch()
        if checks:
            self.grad_checks.extend(checks)
            if self.record:
                self.record.log("grad_checks", self.steps, checks=checks)
        for fetched in (self._fetch_all(self._pending) if self._pending else []):
            self.samples.append(fetched)
            if self.first_sample is None:
                self.first_sample = fetched
            if self.record:
                self.record.log("sample", fetched["step"], **{k: v for k, v in fetched.items() if k != "step"})
        self._pending = []

    def _fetch_all(self, pending: list[dict]) -> list[dict]:
        """All pending samples in one device-to-host transfer, then cut back into named rows."""
        order = []
        for sample in pending:
            for n in sample["layers"]:
                order += [sample["layers"][n], sample["grads"][n]]
            if sample["params"] is not None:
                order.append(sample["params"])
            if sample["inputs"] is not None:
                order.append(sample["inputs"])
            order.append(sample["grad_norm"].reshape(1))
        # float64: the histograms were rounded there (stats.HIST_DECIMALS), and stay short in JSON
        flat = torch.cat([t.reshape(-1).double().to(order[0].device) for t in order]).cpu().tolist()
        shapes = {n: list(p.shape) for n, p in self.params}
        act_len, grad_len = len(S.ACT_FIELDS) + self.bins, len(S.ACT_GRAD_FIELDS) + self.bins
        param_len, input_len = len(S.PARAM_FIELDS) + self.bins, len(S.INPUT_FIELDS)
        at, out = 0, []
        for sample in pending:
            fetched = {"step": sample["step"], "layers": [], "params": []}
            for n in sample["layers"]:
                row = {"name": n, "kind": sample["kinds"][n], **S.unpack(flat[at:at + act_len], S.ACT_FIELDS)}
                grad = S.unpack(flat[at + act_len:at + act_len + grad_len], S.ACT_GRAD_FIELDS)
                row.update(grad_mean=grad["grad_mean"], grad_std=grad["grad_std"], grad_hist=grad["hist"],
                           shape=sample["shapes"][n])
                fetched["layers"].append(row)
                at += act_len + grad_len
            for n, _ in (self.params if sample["params"] is not None else []):
                fetched["params"].append({"name": n, "shape": shapes[n],
                                          **S.unpack(flat[at:at + param_len], S.PARAM_FIELDS)})
                at += param_len
            if sample["inputs"] is not None:
                fetched["inputs"] = {k: v for k, v in S.unpack(flat[at:at + input_len], S.INPUT_FIELDS).items()
                                     if k != "hist"}
                at += input_len
            fetched["grad_norm"] = None if flat[at] != flat[at] else flat[at]  # JSON has no NaN
            at += 1
            out.append(fetched)
        return out

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._probe is not None:
                self._probe.detach()
                self._probe = None
            self._clear.stop()
            if self.record:
                self.record.close()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
