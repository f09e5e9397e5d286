"""Watch: per-layer statistics from any nn.Module, in the Trainer or in a user's own loop.

    watch = babysit.Watch(model, optimizer)       # nothing else in the loop changes
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watch.step(loss)

Cost model. Every step: the loss is kept as a device tensor and the lr as a float (no sync).
Every `every` steps (and at step 1, to see the initialization) one step is sampled: hooks are
attached just before it and removed right after, so unsampled steps run no hook at all. The
sampled numbers stay on the device until a flush fetches them all in one transfer.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from babysit.activations import kind_of, lookup
from babysit.layout import WATCH
from babysit.watch import stats as S
from babysit.watch.record import Record


class Watch:
    KEEP_SAMPLES = 100

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, every: int = 200,
                 run_dir: Optional[Path | str] = None, bins: int = S.BINS, flush_every: int = 1000,
                 start_step: int = 0, grad_norm_every_step: bool = False):
        """run_dir: where watch.jsonl goes (None: keep samples in memory only). start_step: the
        step a resumed run continues from; records after it are dropped so nothing counts twice.
        grad_norm_every_step: the global gradient norm of every step, not only of sampled ones;
        it reads every gradient every step, measured at 18% of a makemore-deep step on a CPU
        (benchmarks/watch_overhead.py --grad-norm-every-step), hence off by default."""
        if every < 1:
            raise ValueError(f"every must be >= 1 (sample one step in `every`), got {every}")
        self.model, self.optimizer, self.every, self.bins = model, optimizer, every, bins
        self.flush_every = flush_every
        self.layers = [(name, m, kind) for name, m in model.named_modules() if (kind := kind_of(m)) is not None]
        self.order = self._module_order(model)  # fixed with the model: the record's meta and the doctor read it
        self.params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self._param_stats = S.ParameterStats([p for _, p in self.params], bins) if self.params else None
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
        self._hooks: list = []
        self._armed = False  # the next step is sampled (a model may have no activation to hook)
        self._captured: dict[str, torch.Tensor] = {}
        self._grads: dict[str, torch.Tensor] = {}
        self._before: Optional[torch.Tensor] = None
        self.record = Record(run_dir, WATCH) if run_dir is not None else None
        if self.record:
            self.record.open(keep_until_step=start_step or None)
            self.record.log("meta", start_step, every=every, bins=bins, grad_range=S.GRAD_RANGE,
                            layers={n: {"kind": k, "range": lookup(k).value_range} for n, _, k in self.layers},
                            order=self.order)
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.first_sample: Optional[dict] = None  # the initialization, kept for the doctor's rules
        self.batch_size: Optional[int] = None  # read off the first hooked activation (batch norm rules)
        if self._is_sampled(self.steps + 1):
            self._arm()  # step 1 is always sampled: the state at initialization

    @staticmethod
    def _module_order(model: nn.Module) -> list[list[str]]:
        """[name, activation kind | 'weights'] in definition order: lets a reader of the record
        pair each activation with the layer that feeds it, without the model."""
        order = []
        for name, m in model.named_modules():
            kind = kind_of(m)
            if kind is not None:
                order.append([name, kind])
            elif isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.ndim >= 2 \
                    and not isinstance(m, nn.Embedding):
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
        return step == 1 or step % self.every == 0

    def sample_next(self) -> None:
        """Sample the next step too, whatever the schedule (a run about to stop takes a last look)."""
        if not self._armed:
            self._arm()

    def _arm(self) -> None:
        self._armed = True
        self._captured, self._grads = {}, {}
        for name, module, kind in self.layers:
            self._hooks.append(module.register_forward_hook(self._forward_hook(name, kind)))
        self._before = self._param_stats.flat() if self._param_stats else None

    def _forward_hook(self, name: str, kind: str):
        def hook(module, inputs, output):
            # Only the first training forward after arming: an evaluation pass must not replace it.
            if not module.training or name in self._captured or not torch.is_grad_enabled():
                return
            # A copy, since a later in-place op (ReLU(inplace=True), say) may overwrite the output;
            # the statistics are computed for all layers at once in _collect.
            self._captured[name] = output.detach().clone()
            self.batch_size = output.shape[0]
            if output.requires_grad:
                output.register_hook(lambda g: self._grads.__setitem__(name, g.detach()))
        return hook

    def _disarm(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _collect(self) -> None:
        """Statistics of the sampled step, on the device: layers of one kind and shape are stacked
        and reduced together; parameters all at once."""
        groups: dict[tuple, list[str]] = {}
        for name, _, kind in self.layers:
            if name in self._captured:
                groups.setdefault((kind, tuple(self._captured[name].shape)), []).append(name)
        acts, grads = {}, {}
        for (kind, _), names in groups.items():
            acts.update(zip(names, S.activation_stats(torch.stack([self._captured[n] for n in names]), kind,
                                                      self.bins)))
            have_grad = [n for n in names if n in self._grads]
            if have_grad:
                grads.update(zip(have_grad, S.gradient_stats(torch.stack([self._grads[n] for n in have_grad]),
                                                             self.bins)))
        no_grad = torch.full((len(S.ACT_GRAD_FIELDS) + self.bins,), float("nan"))
        order = [n for n, _, _ in self.layers if n in acts]  # model order, not group order
        sample = {"step": self.steps, "params": None, "layers": {n: acts[n] for n in order},
                  "grads": {n: grads.get(n, no_grad.to(acts[n].device)) for n in order},
                  "shapes": {n: list(self._captured[n].shape[1:]) for n in order}}  # per example
        if self._param_stats is not None:
            sample["params"] = self._param_stats(self._before)  # (parameters, fields + bins)
            sample["grad_norm"] = self._param_stats.grad_norm
        else:
            sample["grad_norm"] = torch.full((), float("nan"))
        self._captured, self._grads = {}, {}
        self._pending.append(sample)
        self._before = None

    # -- the per-step call -------------------------------------------------------------------
    def step(self, loss: Optional[torch.Tensor] = None) -> None:
        """Call once per optimizer step, after optimizer.step()."""
        self.steps += 1
        if loss is not None:
            self._losses.append(loss.detach())
        if self.optimizer is not None:
            self._lrs.append(self.optimizer.param_groups[0]["lr"])
        if self._norms is not None:
            grads = [p.grad for _, p in self.params if p.grad is not None]
            if grads:
                self._norms.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        if self._armed:  # this step was sampled
            self._armed = False
            self._disarm()
            self._collect()
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
            order.append(sample["grad_norm"].reshape(1))
        flat = torch.cat([t.reshape(-1).float().to(order[0].device) for t in order]).cpu().tolist()
        kinds = {n: k for n, _, k in self.layers}
        shapes = {n: list(p.shape) for n, p in self.params}
        act_len, grad_len = len(S.ACT_FIELDS) + self.bins, len(S.ACT_GRAD_FIELDS) + self.bins
        param_len = len(S.PARAM_FIELDS) + self.bins
        at, out = 0, []
        for sample in pending:
            fetched = {"step": sample["step"], "layers": [], "params": []}
            for n in sample["layers"]:
                row = {"name": n, "kind": kinds[n], **S.unpack(flat[at:at + act_len], S.ACT_FIELDS)}
                grad = S.unpack(flat[at + act_len:at + act_len + grad_len], S.ACT_GRAD_FIELDS)
                row.update(grad_mean=grad["grad_mean"], grad_std=grad["grad_std"], grad_hist=grad["hist"],
                           shape=sample["shapes"][n])
                fetched["layers"].append(row)
                at += act_len + grad_len
            for n, _ in (self.params if sample["params"] is not None else []):
                fetched["params"].append({"name": n, "shape": shapes[n],
                                          **S.unpack(flat[at:at + param_len], S.PARAM_FIELDS)})
                at += param_len
            fetched["grad_norm"] = flat[at]
            at += 1
            out.append(fetched)
        return out

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._disarm()
            self._armed = False
            if self.record:
                self.record.close()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
