"""train.compile: the whole training step captured once as a CUDA graph and replayed.

A makemore-sized step is all kernel launches: on an H200 the eager loop ran makemore-bn at 779
steps/s, three times slower than two CPU cores; the same step captured as one graph ran 15x
faster (issue 16's measurements). What is captured, once: the batch drawn on the device (the
sampler's own permutation, indexed by a device counter, so the batches are the eager run's),
forward and loss (under the run's autocast), backward, gradient clipping, the optimizer step
reading the learning rate from a device tensor, the loss added to the Trainer's on-device sum
and written into a ring the Watch reads at its flush. Between replays the host only compares
the schedule's lr with the last one it wrote (a float), moves the sampler on, and starts a new
epoch's permutation when one ends.

Steps that Watch samples run eagerly, with its hooks, on the same parameters, gradients and
optimizer state (gradients are zeroed in place, never freed: the graph holds their addresses).

What cannot be captured trains eagerly, said once (`plan`): a device other than CUDA, L-BFGS
(its line search calls the loss several times), a plateau schedule (the lr follows evaluations),
fp16 (the gradient scaler reads its inf check on the host every step), batches drawn on the host
(data.augment, a streamed dataset), an optimizer without a capturable implementation, and a
callback that runs at every step (on_step_end: it would read a loss the graph overwrites).

torch.compile is the alternative the issue names: on the H200 `mode="reduce-overhead"` on forward
and loss alone gave 1.7x eager, the whole step hand-captured 11.7x; hence hand capture.
"""
from __future__ import annotations

from typing import Optional

import torch

from babysit.penalties import with_penalty
from babysit.train.batches import BatchSampler

# Eager steps on a side stream before the capture (PyTorch's CUDA-graph recipe: lazy
# initialization, cuBLAS workspaces and the optimizer's state must exist before capture). They
# are real training steps of the run, counted as such.
WARMUP_STEPS = 3
# Optimizers whose step has a capturable path with a tensor lr: SGD through its fused kernel,
# the others with capturable=True (torch.optim's documentation of each).
FUSED = ("SGD",)
CAPTURABLE = ("Adam", "AdamW", "RMSprop")


def plan(trainer) -> tuple[bool, Optional[str]]:
    """(capture the step?, why not, when it was asked for and cannot be). compile: off never
    captures; auto captures on CUDA when the setup allows it and says why not only on CUDA;
    graph says why not everywhere."""
    mode = trainer.spec.train.compile
    if mode == "off":
        return False, None
    reason = why_not(trainer)
    if reason is None:
        return True, None
    quiet = mode == "auto" and trainer.device.type != "cuda"  # the CPU's auto: eager, as expected
    return False, None if quiet else f"train.compile {mode}: {reason}; training eagerly"


def why_not(trainer) -> Optional[str]:
    """Why the Trainer's setup cannot be captured as one graph, or None when it can."""
    spec = trainer.spec
    if trainer.device.type != "cuda":
        return f"CUDA graphs need a CUDA device, this run is on {trainer.device}"
    if spec.optim.name == "lbfgs":
        return "optim lbfgs calls the loss several times per step (its line search)"
    if spec.schedule.name == "plateau":
        return "schedule plateau sets the lr from evaluations"
    if spec.train.precision == "fp16":
        return "precision fp16's gradient scaler checks for inf on the host every step (bf16 needs none)"
    if type(trainer.sampler) is not BatchSampler:
        return "batches are drawn on the host (data.augment, or a streamed dataset)"
    name = type(trainer.optimizer).__name__
    if name not in FUSED + CAPTURABLE:
        return f"optimizer {name} has no capturable step (these have: {', '.join(FUSED + CAPTURABLE)})"
    stepping = [type(cb).__name__ for cb in trainer.callbacks if cb.overrides("on_step_end")]
    if stepping:
        return f"callback {', '.join(stepping)} runs at every step (on_step_end)"
    return None


class LaggedRead:
    """A device number read one call late without waiting for the device: each call starts a
    non-blocking copy to pinned host memory and returns the previous call's number (finished by
    then, as GUARD_EVERY replays were queued after it). The guard's check of a window thus lands one
    window later: a fault at step k still stops the run by step k + 2 x GUARD_EVERY."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.host = torch.zeros(1, pin_memory=self.cuda)
        self.pending = None

    def swap(self, value: torch.Tensor, meta):
        out = None
        if self.pending is not None:
            event, previous = self.pending
            if event is not None:
                event.synchronize()
            out = float(self.host[0]), previous
        self.host.copy_(value.reshape(1), non_blocking=self.cuda)
        event = None
        if self.cuda:
            event = torch.cuda.Event()
            event.record()
        self.pending = (event, meta)
        return out


class GraphStep:
    """The Trainer's step as one CUDA graph. `step()` returns that step's loss (a view into the
    ring, valid until the ring comes round: `ring_size` steps, at least the Trainer's longest
    window between flushes); it adds the loss to trainer.loss_sum itself."""

    def __init__(self, trainer, ring_size: int):
        self.t = trainer
        device, sampler = trainer.device, trainer.sampler
        self.rows = torch.empty(sampler.per_epoch * sampler.batch_size, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.ring = torch.zeros(ring_size, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.host_slot = 0
        self.lr = [torch.tensor(float(g["lr"]), device=device) for g in trainer.optimizer.param_groups]
        self.host_lr = [float(g["lr"]) for g in trainer.optimizer.param_groups]
        self.params = [p for p in trainer.model.parameters() if p.requires_grad]
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.lagged = LaggedRead(device)  # the Trainer's guard, without a sync per check
        self.warm = 0
        self.failed: Optional[str] = None  # why the capture failed: the Trainer goes on eagerly
        self._epoch = None
        if device.type == "cuda" and type(trainer.optimizer).__name__ in CAPTURABLE:
            for group in trainer.optimizer.param_groups:  # state made from the first step on fits capture
                group["capturable"] = True
        self.sync()

    # -- host bookkeeping --------------------------------------------------------------------
    def sync(self) -> None:
        """Point the device's sampler state at the host's (after an eager step, at a new epoch)."""
        s = self.t.sampler
        if self._epoch != s.epoch:
            self.rows.copy_(s.perm[:self.rows.numel()])
            self._epoch = s.epoch
        self.pos.fill_(s.pos)

    def _before_replay(self) -> None:
        s = self.t.sampler
        if s.pos == s.per_epoch:  # the sampler's own epoch change: same permutations as eager
            s.epoch += 1
            s.pos = 0
            s._new_epoch()
            self.sync()
        for i, g in enumerate(self.t.optimizer.param_groups):
            if g["lr"] != self.host_lr[i]:  # the schedule moved: one small fill, no sync
                self.host_lr[i] = float(g["lr"])
                self.lr[i].fill_(self.host_lr[i])

    # -- the captured body -------------------------------------------------------------------
    def _body(self) -> None:
        t, b = self.t, self.t.sampler.batch_size
        idx = self.rows.view(-1, b).index_select(0, self.pos).view(b)
        x, y = t.train_split.x.index_select(0, idx), t.train_split.y.index_select(0, idx)
        self.pos.add_(1)
        with t.precision.autocast(cache_enabled=False):  # no cast cache inside a capture
            loss = with_penalty(t.loss_fn(t.model(x), y), t.model, t.penalty)
        t.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        if t.spec.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, t.spec.train.grad_clip, foreach=True)
        groups = t.optimizer.param_groups
        floats = [g["lr"] for g in groups]
        fused = [g.get("fused") for g in groups]
        for g, lr in zip(groups, self.lr):  # the step reads the device lr; the host keeps its float
            g["lr"] = lr
            if type(t.optimizer).__name__ in FUSED:
                g["fused"] = True
        try:
            t.optimizer.step()
        finally:
            for g, lr, f in zip(groups, floats, fused):
                g["lr"], g["fused"] = lr, f
        loss = loss.detach().float()
        t.loss_sum.add_(loss)
        self.ring.index_copy_(0, self.slot, loss.view(1))
        self.slot.add_(1).remainder_(self.ring.numel())

    def _capture(self) -> None:
        """Record the body (recording runs nothing: the next replay is the next step)."""
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._body()

    def step(self) -> torch.Tensor:
        self._before_replay()
        if self.graph is not None:
            self.graph.replay()
        elif self.t.device.type != "cuda":  # the body as it would be captured, run eagerly (tests on CPU)
            self._body()
        else:  # a warm-up step: eager on a side stream, on the very tensors the graph will use
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._body()
            torch.cuda.current_stream().wait_stream(side)
            self.warm += 1
            if self.warm == WARMUP_STEPS:
                try:
                    self._capture()
                except RuntimeError as exc:  # a forward that syncs (.item(), data-dependent shapes)
                    self.graph = None
                    self.failed = (f"train.compile: the step could not be captured ({str(exc).splitlines()[0]}); "
                                   "training eagerly")
        self.t.sampler.pos += 1
        at = self.host_slot
        self.host_slot = (at + 1) % self.ring.numel()
        return self.ring[at]

    def eager_done(self) -> None:
        """An eager step (a sampled one) ran: its batch moved the host sampler on."""
        self.sync()
