"""The Trainer: one loop, read top to bottom.

Hot-path rule: nothing in a step waits for the device. The loss is summed on the device and
fetched once per `log_every` steps (the flush), and once per GUARD_EVERY steps by the guard:
NaN, Inf or a loss past 3x the first one (LECTURES.md §2 item 8) flushes at once, so the doctor's
stop rules (or the Trainer itself, without a doctor) end the run within a few steps of the fault.
A run that ends in an error reports the last good checkpoint's model; Ctrl-C or SIGTERM writes a
checkpoint and raises Interrupted with the exit code 128 + signal.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

from babysit.build import CUBLAS_WORKSPACE, deterministic, seed_everything, select_device
from babysit.data import Dataset, build_data
from babysit.data.augment import augmented
from babysit.errors import BabysitWarning, Interrupted, TrainingError
from babysit.layout import CHECKPOINT, METRICS, SPEC, SUMMARY, WATCH, atomic_write_text, make_dir, write_json
from babysit.losses import build_loss
from babysit.models import build_model
from babysit.penalties import build_penalty, with_penalty
from babysit.reference import DIVERGE_FACTOR
from babysit.spec import Spec, dump_spec, resume_changes
from babysit.train.batches import make_sampler
from babysit.train.callbacks import Callback
from babysit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from babysit.train import graph as graphs
from babysit.train.evaluate import evaluate
from babysit.train.optim import Schedule, build_optimizer
from babysit.train.precision import Precision
from babysit.watch.record import Record
from babysit.watch.watch import Watch


# The guard reads the mean loss of the last GUARD_EVERY steps (one host sync each time): a fault at
# step k stops the run by about step k + GUARD_EVERY, well inside the k + 20 users were promised.
GUARD_EVERY = 10
SIGNALS = (signal.SIGINT, signal.SIGTERM)
FIGURES = ("train_loss", "train_acc", "val_loss", "val_acc")  # summary.json's figures of the kept model


@dataclass
class Start:
    """A new run that starts from a checkpoint's weights and data position instead of its init (a
    repair attempt continuing from the last good checkpoint): its optimizer is fresh, and its
    schedule is moved on to `step`."""

    model: dict
    step: int
    sampler: Optional[dict] = None


def build_start(spec: Spec, data: Optional[Dataset] = None) -> tuple[torch.device, Dataset, torch.nn.Module]:
    """The device, data and freshly initialized model a run of `spec` starts from. Preflight
    checks and the lr range test use it too, so they examine the very model `train` would get."""
    device = select_device(spec.train.device)
    seed_everything(spec.seed)
    data = data if data is not None else build_data(spec.data)
    # the loss's targets (class labels, values in [0, 1], ...): all of them in memory, a sample if streamed
    build_loss(spec.loss).check_targets(data.train.in_memory().y, f"{data.source or 'data'}, train split")
    return device, data, build_model(spec, data).to(device)


class Trainer:
    """The training loop of a spec. What a run does besides training (the checklist, the doctor,
    EMA, snapshots, a progress bar) comes in as callbacks: babysit.session.build_trainer adds
    them from the spec. optimizer_factory(model) replaces the spec's optimizer (a fine-tune's
    per-layer learning rates); `start` a new run's init (see Start)."""

    def __init__(self, spec: Spec, run_dir: Path | str, *, callbacks: Iterable[Callback] = (),
                 resume: bool = False, data: Optional[Dataset] = None,
                 optimizer_factory: Optional[Callable[[torch.nn.Module], torch.optim.Optimizer]] = None,
                 start: Optional[Start] = None):
        self.spec, self.run_dir, self.resume, self.start = spec, Path(run_dir), resume, start
        if spec.train.deterministic:  # before the first cuBLAS call (an LSUV init makes one)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        self.device, self.data, self.model = build_start(spec, data)
        self.train_split = self.data.train.to(self.device)
        self.val_split = self.data.val.to(self.device)
        t = spec.train
        self.batch_size = t.batch_for(len(self.train_split))
        if t.batch_size != "full" and t.batch_size > len(self.train_split):
            warnings.warn(f"train.batch_size {t.batch_size} is larger than the {len(self.train_split)} training "
                          "examples: every batch is the whole split (train.batch_size: full says so)", BabysitWarning)
        self.sampler = augmented(make_sampler(self.train_split, self.batch_size, seed=spec.seed), spec.data,
                                 self.train_split, spec.seed)  # data.augment: training batches only
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.sampler.per_epoch
        self.optimizer = (optimizer_factory or (lambda m: build_optimizer(m, spec.optim)))(self.model)
        self.penalty = build_penalty(spec)  # None unless train.regularizer adds a term to the loss
        self.loss_fn = build_loss(spec.loss)
        self.precision = Precision(t.precision, self.device)
        self.graph: Optional[graphs.GraphStep] = None  # train.compile: the captured step, once planned
        self.schedule = Schedule(self.optimizer, spec.schedule, self.total_steps)
        self.callbacks = list(callbacks)
        self.record = Record(self.run_dir)
        self.step = 0
        self.elapsed = 0.0  # wall seconds of earlier sessions of this run (resume)
        self.loss_sum = torch.zeros((), device=self.device)
        self.loss_count = 0
        self.best = {"val_loss": float("inf"), "step": 0, "state": None, "bad_evals": 0}
        self.stop_reason: Optional[str] = None
        self.failed = False  # stopped by an error (divergence, NaN, a doctor error): exit code 1
        self.first_loss: Optional[float] = None  # the guard's reference: the loss of the run's first step
        self._guard_mark = (torch.zeros((), device=self.device), 0)  # loss_sum, loss_count at the last check
        self.checkpoint_step: Optional[int] = None  # the step of the checkpoint on disk, if any
        self._signal: Optional[int] = None
        self._last_look: Optional[str] = None  # the guard's reason to stop, after one more (sampled) step
        self.watch: Optional[Watch] = None
        # Train accuracy at each evaluation, on a fixed slice as large as the val split (cheap,
        # and comparable with val for the train/val gap).
        self.train_probe = self.train_split[:max(len(self.val_split), 1)]

    @property
    def loss_kind(self) -> str:
        """What the spec's loss is, for the doctor (RunView.loss_kind): cross_entropy, mse, ..."""
        return self.loss_fn.kind

    # -- checkpoints -------------------------------------------------------------------------
    def _callback_keys(self) -> list[tuple[str, Callback]]:
        """Each callback's key in a checkpoint: its class name, "#2", "#3" for more of one class."""
        seen: Counter = Counter()
        keys = []
        for cb in self.callbacks:
            name = type(cb).__name__
            seen[name] += 1
            keys.append((name if seen[name] == 1 else f"{name}#{seen[name]}", cb))
        return keys

    def state_dict(self) -> dict:
        return {"spec": self.spec.model_dump(mode="json"), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "sampler": self.sampler.state_dict(), "rng": rng_state(), "step": self.step,
                "elapsed": self.elapsed + time.perf_counter() - self._t0,
                "loss_sum": self.loss_sum, "loss_count": self.loss_count, "best": self.best,
                "first_loss": self.first_loss, "classes": self.data.extra.get("classes"),  # id -> name
                "precision": self.precision.state_dict(),
                "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()
                              if cb.overrides("state_dict")}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.loss_sum, self.loss_count = state["loss_sum"].to(self.device), state["loss_count"]
        self._guard_mark = (self.loss_sum.clone(), self.loss_count)
        self.best, self.first_loss, self.checkpoint_step = state["best"], state.get("first_loss"), self.step
        self.precision.load_state_dict(state.get("precision"))
        saved = state.get("callbacks", {})
        for key, cb in self._callback_keys():
            if key in saved:
                cb.load_state_dict(saved[key])

    def _prepare_run_dir(self) -> Optional[int]:
        make_dir(self.run_dir)
        ckpt = self.run_dir / CHECKPOINT
        if self.resume:
            # RNG states must stay on the CPU; model and optimizer states are copied over on load.
            state = load_checkpoint(ckpt, map_location="cpu")
            changed = resume_changes(state["spec"], self.spec)
            if changed:
                raise TrainingError(f"cannot resume {self.run_dir} with a different {', '.join(changed)} "
                                    "section: the checkpoint holds that state. Only train.* and watch.* "
                                    "may change on resume (e.g. train.steps to extend the run)")
            self.load_state_dict(state)
        elif any((self.run_dir / f).exists() for f in (CHECKPOINT, SUMMARY, METRICS, WATCH)):
            raise TrainingError(f"{self.run_dir} already holds a run; pass --resume to continue it, "
                                "or choose another --out (nothing was overwritten)")
        elif self.start is not None:
            self.model.load_state_dict(self.start.model)
            if self.start.sampler is not None:
                self.sampler.load_state_dict(self.start.sampler)
            self.schedule.advance(self.start.step)
            self.step = self.start.step
        atomic_write_text(self.run_dir / SPEC, dump_spec(self.spec))
        return self.step if self.resume else None

    # -- the loop ----------------------------------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            return with_penalty(self.loss_fn(self.model(x), y), self.model, self.penalty)

    def _train_step(self) -> torch.Tensor:
        if self.spec.optim.name == "lbfgs":
            x, y = self.sampler.next()

            def closure():
                self.optimizer.zero_grad(set_to_none=True)
                loss = self._loss(x, y)
                loss.backward()
                return loss

            return self.optimizer.step(closure).detach()
        x, y = self.sampler.next()
        loss = self._loss(x, y)
        # with a captured step, gradients are zeroed in place: the graph holds their addresses
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        self.precision.backward(loss)
        self.precision.step(self.optimizer, self.model.parameters(), self.spec.train.grad_clip)
        return loss.detach()

    def _step(self) -> torch.Tensor:
        """One training step, added to the on-device loss sum: the captured graph's replay, or
        eagerly (no graph, or a step Watch samples with its hooks)."""
        if self.graph is not None and (self.watch is None or not self.watch.sampling):
            loss = self.graph.step()
            if self.graph.failed:
                warnings.warn(self.graph.failed, BabysitWarning)
                self.graph = None
            return loss
        loss = self._train_step()
        self.loss_sum += loss  # stays on the device: no sync here
        if self.graph is not None:
            self.graph.eager_done()
        return loss

    def _plan_graph(self) -> None:
        """train.compile: capture the step when the setup allows it, else say once why not."""
        capture, why = graphs.plan(self)
        if why:
            warnings.warn(why, BabysitWarning)
        if capture:
            self.graph = graphs.GraphStep(self, ring_size=self.spec.train.log_every + 1)

    def fit(self) -> dict:
        with deterministic(self.spec.train.deterministic):
            return self._fit()

    def _fit(self) -> dict:
        keep_until = self._prepare_run_dir()
        self._t0 = time.perf_counter()
        t = self.spec.train
        step_hooks = [cb for cb in self.callbacks if cb.overrides("on_step_end")]
        restore = self._catch_signals()
        try:  # whatever fails from here on, hooks come off, files close and signals are restored
            if not self.resume:
                # before the record opens: a failed checklist leaves no metrics.jsonl, so the same
                # --out can be used again once the setup is fixed
                for cb in self.callbacks:
                    cb.on_setup(self)
            self.record.open(keep_until_step=keep_until)
            w = self.spec.watch
            if w.enabled:  # flushed by the Trainer at its own flushes, so records align with checkpoints
                # early=False: the spec's schedule as it is; the doctor's thresholds on Trainer runs
                # were calibrated on it (with the dense start, doctor_suite.py missed
                # broken-names-update-high and repaired 19/22 instead of 21/22)
                self.watch = Watch(self.model, self.optimizer, every=w.every, bins=w.bins, run_dir=self.run_dir,
                                   flush_every=1 << 62, start_step=self.step,
                                   grad_norm_every_step=w.grad_norm_every_step, early=False)
            for cb in self.callbacks:
                cb.on_train_begin(self)
            self.model.train()
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            self._plan_graph()
            while self.step < self.total_steps and self.stop_reason is None and self._signal is None:
                loss = self._step()
                if self.watch is not None:
                    self.watch.step(loss)  # before the schedule moves: it records this step's lr
                self.schedule.step()
                self.loss_count += 1
                self.step += 1
                if self.first_loss is None:  # one host sync in the whole run: the guard's reference
                    self.first_loss = float(loss)
                for cb in step_hooks:
                    cb.on_step_end(self, self.step, loss)
                last = self.step == self.total_steps
                due_eval = self.step % t.eval_every == 0 or last
                due_ckpt = self.step % t.checkpoint_every == 0 or last
                if self._last_look is not None:  # the guard's fault, now with a sample of a faulty step
                    self._flush()
                    self.stop(self._last_look, failed=True)
                elif self.step % GUARD_EVERY == 0:
                    self._guard()
                if self.step % t.log_every == 0 or due_eval or due_ckpt:
                    self._flush()
                if due_eval and self.stop_reason is None:
                    self._evaluate()
                if due_ckpt and self.stop_reason is None:
                    self._save_checkpoint()
            if self._signal is not None:
                self._interrupted()
        except torch.OutOfMemoryError as exc:
            raise TrainingError(f"out of memory at step {self.step + 1} with train.batch_size {self.batch_size} "
                                f"on {self.device} ({str(exc).splitlines()[0]}): lower train.batch_size "
                                "or the model's width (model.hidden, model.channels)") from None
        finally:
            restore()
            self.record.close()
            if self.watch is not None:
                self.watch.close()
            if hasattr(self.sampler, "close"):  # a DataLoader's worker processes
                self.sampler.close()
        return self._finish()

    # -- stopping ----------------------------------------------------------------------------
    def stop(self, reason: str, failed: bool) -> None:
        """End the run after this step: an early stop (failed=False), or an error (failed=True:
        the summary reports the last good checkpoint's model and `babysit train` exits 1)."""
        if self.stop_reason is not None:
            return
        if failed:
            reason = reason.rstrip(". ") + (
                f". Kept: the last good checkpoint, step {self.checkpoint_step} ({self.run_dir / CHECKPOINT})."
                if self.checkpoint_step is not None else f". No checkpoint was written before it (the first was "
                f"due at step {self.spec.train.checkpoint_every}): there is nothing to resume from.")
        self.stop_reason, self.failed = reason, failed

    def _guard(self) -> None:
        """Every GUARD_EVERY steps: the mean loss since the last check, against NaN and 3x the first."""
        mark_sum, mark_count = self._guard_mark
        n = self.loss_count - mark_count
        if n <= 0:
            return
        window = self.loss_sum - mark_sum
        self._guard_mark = (self.loss_sum.clone(), self.loss_count)
        end = self.step
        if self.graph is None:
            total = float(window)  # the guard's one host sync
        else:  # a replayed step must not wait: the previous window's sum, copied meanwhile
            read = self.graph.lagged.swap(window, (n, end))
            if read is None:
                return
            total, (n, end) = read
        mean = total / n
        first = self.first_loss
        if not math.isfinite(mean) or (first is not None and first > 0 and mean > DIVERGE_FACTOR * first):
            what = "turned non-finite" if not math.isfinite(mean) else f"passed 3x its first value ({first:.4g})"
            self._last_look = (f"the loss {what}: mean {mean:.4g} over steps {end - n + 1}-{end}; "
                               "lower optim.lr or set train.grad_clip")
            # one more step, sampled, before the flush that stops the run: the doctor then sees the
            # faulty updates (update:data) and activations, not only the loss
            if self.watch is not None:
                self.watch.sample_next()

    def _save_checkpoint(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self.state_dict())
        self.checkpoint_step = self.step

    def _catch_signals(self):
        """Ctrl-C / SIGTERM set a flag the loop reads at the end of a step (a complete state to
        checkpoint); returns the function that puts the previous handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signal handlers belong to the main thread
        previous = {s: signal.signal(s, lambda signum, frame: setattr(self, "_signal", signum)) for s in SIGNALS}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]

    def _interrupted(self) -> None:
        self._flush()
        self._save_checkpoint()
        name = signal.Signals(self._signal).name
        raise Interrupted(f"{name} at step {self.step}: checkpoint written to {self.run_dir / CHECKPOINT}; "
                          f"continue with: babysit train {self.run_dir / SPEC} --out {self.run_dir} --resume",
                          128 + self._signal)

    def _flush(self) -> None:
        if self.watch is not None:
            self.watch.flush()
        if self.loss_count == 0:
            return
        mean_loss = self.loss_sum.item() / self.loss_count  # the one sync per log window
        lr = self.optimizer.param_groups[0]["lr"]
        scalars = {"train_loss": mean_loss, "lr": lr}
        self.record.log("train", self.step, **scalars)
        self.loss_sum.zero_()
        self.loss_count = 0
        self._guard_mark = (torch.zeros((), device=self.device), 0)
        for cb in self.callbacks:
            cb.on_log(self, self.step, scalars)
        if not math.isfinite(mean_loss):
            self.stop(f"non-finite loss ({mean_loss}) by step {self.step}; lower optim.lr (now {lr:g}) "
                      "or set train.grad_clip", failed=True)

    def _measure(self) -> dict:
        """The evaluation's metrics: val loss and accuracy, and the train probe's."""
        m = evaluate(self.model, self.val_split, loss=self.loss_fn)
        train_m = evaluate(self.model, self.train_probe, loss=self.loss_fn)
        metrics = {"val_loss": m["loss"], "val_acc": m["acc"], "train_probe_loss": train_m["loss"],
                   "train_acc": train_m["acc"]}
        if m["acc"] is None:  # regression: no accuracy
            del metrics["val_acc"], metrics["train_acc"]
        return metrics

    def _evaluate(self) -> None:
        metrics = self._measure()
        val_loss = metrics["val_loss"]
        self.record.log("eval", self.step, **metrics)
        self.schedule.on_eval(val_loss)
        es = self.spec.train.early_stopping
        if es is not None:
            if val_loss < self.best["val_loss"] - es.min_delta:
                state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self.best = {"val_loss": val_loss, "step": self.step, "state": state, "bad_evals": 0}
            else:
                self.best["bad_evals"] += 1
                if self.best["bad_evals"] >= es.patience:
                    self.stop(f"early stopping: val loss did not improve for {es.patience} evaluations; "
                              f"best {self.best['val_loss']:.4f} at step {self.best['step']}", failed=False)
        for cb in self.callbacks:
            cb.on_eval_end(self, self.step, metrics)

    def _finish(self) -> dict:
        summary = {"name": self.spec.name, "status": "failed" if self.failed else
                   "stopped early" if self.stop_reason else "finished", "steps": self.step,
                   "total_steps": self.total_steps, "stopped": self.stop_reason, "restored_best_step": None}
        kept = True
        if self.failed:  # report the model that is kept (the last good checkpoint), the diverged one beside it
            summary["diverged"] = {"step": self.step, **self._figures()}
            kept = self.checkpoint_step is not None
            if kept:
                self.model.load_state_dict(load_checkpoint(self.run_dir / CHECKPOINT, self.device)["model"])
            summary["kept_step"] = self.checkpoint_step
        elif self.best.get("state") is not None:  # early stopping: end on the best weights
            self.model.load_state_dict(self.best["state"])
            summary["restored_best_step"] = self.best["step"]
            self._save_checkpoint()
        summary.update(self._figures() if kept else dict.fromkeys(FIGURES))
        summary.update(wall_s=round(self.elapsed + time.perf_counter() - self._t0, 3), device=str(self.device),
                       parameters=sum(p.numel() for p in self.model.parameters()))
        summary["steps_per_s"] = round(self.step / max(summary["wall_s"], 1e-9), 1)
        summary["compile"] = "graph" if self.graph is not None else "eager"
        if self.device.type == "cuda":  # the peak of this session's training (resets at fit)
            summary["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2 ** 20, 1)
        write_json(self.run_dir / SUMMARY, summary)  # on disk even if a callback fails below
        for cb in self.callbacks:
            cb.on_train_end(self, summary)  # callbacks add their own results (EMA, snapshots, ...)
        write_json(self.run_dir / SUMMARY, summary)
        return summary

    def _figures(self) -> dict:
        """FIGURES of the model as it is now, on the whole train and val splits."""
        train_m = evaluate(self.model, self.train_split, loss=self.loss_fn)
        val_m = evaluate(self.model, self.val_split, loss=self.loss_fn)
        return dict(zip(FIGURES, (train_m["loss"], train_m["acc"], val_m["loss"], val_m["acc"])))
