"""The Trainer: one loop, read top to bottom.

Hot-path rule: nothing in a step waits for the device. The loss is summed on the device and
fetched once per `log_every` steps (the flush); evaluation, checkpoints and non-finite checks
happen at flushes only.
"""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Iterable, Optional

import torch
import torch.nn.functional as F

from babysit.data import Dataset, build_data
from babysit.data.augment import augmented
from babysit.models import build_model
from babysit.spec import Spec, dump_spec
from babysit.train.batches import BatchSampler
from babysit.train.callbacks import Callback, ProgressBar, from_spec
from babysit.train.checkpoint import (CHECKPOINT, atomic_write_text, load_checkpoint, rng_state,
                                      save_checkpoint, set_rng_state)
from babysit.train.evaluate import evaluate
from babysit.train.optim import Schedule, build_optimizer
from babysit.train.penalties import build_penalty, with_penalty
from babysit.watch.record import METRICS, Record
from babysit.watch.watch import WATCH_FILE, Watch

SUMMARY = "summary.json"
PREFLIGHT = "preflight.json"


class TrainingError(RuntimeError):
    pass


def select_device(name: str = "auto") -> torch.device:
    """auto: CUDA when torch sees a GPU, else the CPU. An explicit device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def build_start(spec: Spec, data: Optional[Dataset] = None) -> tuple[torch.device, Dataset, torch.nn.Module]:
    """The device, data and freshly initialized model a run of `spec` starts from. Preflight
    checks and the lr range test use it too, so they examine the very model `train` would get."""
    device = select_device(spec.train.device)
    seed_everything(spec.seed)
    data = data if data is not None else build_data(spec.data)
    return device, data, build_model(spec, data).to(device)


class Trainer:
    def __init__(self, spec: Spec, run_dir: Path | str, *, callbacks: Iterable[Callback] = (),
                 progress: bool = True, resume: bool = False, data: Optional[Dataset] = None,
                 doctor: bool = True):
        self.spec, self.run_dir, self.resume = spec, Path(run_dir), resume
        self.device, self.data, self.model = build_start(spec, data)
        self.train_split = self.data.train.to(self.device)
        self.val_split = self.data.val.to(self.device)
        t = spec.train
        self.batch_size = t.batch_for(len(self.train_split))
        self.sampler = augmented(BatchSampler(self.train_split, self.batch_size, seed=spec.seed), spec.data,
                                 self.train_split, spec.seed)  # data.augment: training batches only
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.sampler.per_epoch
        self.optimizer = build_optimizer(self.model, spec.optim)
        self.penalty = build_penalty(spec)  # None unless train.regularizer adds a term to the loss
        self.schedule = Schedule(self.optimizer, spec.schedule, self.total_steps)
        from babysit.doctor.callback import DoctorCallback  # rules at evaluations; errors stop the run
        callbacks = from_spec(spec) + list(callbacks)
        if doctor and not any(isinstance(cb, DoctorCallback) for cb in callbacks):
            callbacks.append(DoctorCallback())
        self.callbacks = callbacks + ([ProgressBar()] if progress else [])
        self.record = Record(self.run_dir)
        self.step = 0
        self.elapsed = 0.0  # wall seconds of earlier sessions of this run (resume)
        self.loss_sum = torch.zeros((), device=self.device)
        self.loss_count = 0
        self.best = {"val_loss": float("inf"), "step": 0, "state": None, "bad_evals": 0}
        self.stop_reason: Optional[str] = None
        self.watch: Optional[Watch] = None
        # Train accuracy at each evaluation, on a fixed slice as large as the val split (cheap,
        # and comparable with val for the train/val gap).
        self.train_probe = self.train_split[:max(len(self.val_split), 1)]

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"spec": self.spec.model_dump(mode="json"), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "sampler": self.sampler.state_dict(), "rng": rng_state(), "step": self.step,
                "elapsed": self.elapsed + time.perf_counter() - self._t0,
                "loss_sum": self.loss_sum, "loss_count": self.loss_count, "best": self.best,
                "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks
                              if cb.overrides("state_dict")}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.loss_sum, self.loss_count = state["loss_sum"].to(self.device), state["loss_count"]
        self.best = state["best"]
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])

    def _prepare_run_dir(self) -> Optional[int]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.run_dir / CHECKPOINT
        if self.resume:
            # RNG states must stay on the CPU; model and optimizer states are copied over on load.
            state = load_checkpoint(ckpt, map_location="cpu")
            saved = state["spec"]
            now = self.spec.model_dump(mode="json")
            changed = [k for k in ("data", "model", "optim", "schedule") if saved.get(k) != now[k]]
            if changed:
                raise TrainingError(f"cannot resume {self.run_dir} with a different {', '.join(changed)} "
                                    "section: the checkpoint holds that state. Only train.* and watch.* "
                                    "may change on resume (e.g. train.steps to extend the run)")
            self.load_state_dict(state)
        elif any((self.run_dir / f).exists() for f in (CHECKPOINT, SUMMARY, METRICS, WATCH_FILE)):
            raise TrainingError(f"{self.run_dir} already holds a run; pass --resume to continue it, "
                                "or choose another --out (nothing was overwritten)")
        atomic_write_text(self.run_dir / "spec.yaml", dump_spec(self.spec))
        return self.step if self.resume else None

    # -- the loop ----------------------------------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return with_penalty(F.cross_entropy(self.model(x), y), self.model, self.penalty)

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
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.spec.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def fit(self) -> dict:
        keep_until = self._prepare_run_dir()
        self._t0 = time.perf_counter()
        t = self.spec.train
        step_hooks = [cb for cb in self.callbacks if cb.overrides("on_step_end")]
        try:  # whatever fails from here on, hooks come off and files close (finally)
            # before the record opens: a failed checklist leaves no metrics.jsonl, so the same
            # --out can be used again once the setup is fixed
            checks = self._preflight() if t.preflight and not self.resume else None
            self.record.open(keep_until_step=keep_until)
            if checks is not None:
                self.record.log("preflight", 0, **checks)
            w = self.spec.watch
            if w.enabled:  # flushed by the Trainer at its own flushes, so records align with checkpoints
                self.watch = Watch(self.model, self.optimizer, every=w.every, bins=w.bins, run_dir=self.run_dir,
                                   flush_every=1 << 62, start_step=self.step,
                                   grad_norm_every_step=w.grad_norm_every_step)
            for cb in self.callbacks:
                cb.on_train_begin(self)
            self.model.train()
            while self.step < self.total_steps and self.stop_reason is None:
                loss = self._train_step()
                if self.watch is not None:
                    self.watch.step(loss)  # before the schedule moves: it records this step's lr
                self.schedule.step()
                self.loss_sum += loss  # stays on the device: no sync here
                self.loss_count += 1
                self.step += 1
                for cb in step_hooks:
                    cb.on_step_end(self, self.step, loss)
                last = self.step == self.total_steps
                due_eval = self.step % t.eval_every == 0 or last
                due_ckpt = self.step % t.checkpoint_every == 0 or last
                if self.step % t.log_every == 0 or due_eval or due_ckpt:
                    self._flush()
                if due_eval and self.stop_reason is None:
                    self._evaluate()
                if due_ckpt and self.stop_reason is None:
                    save_checkpoint(self.run_dir / CHECKPOINT, self.state_dict())
        finally:
            self.record.close()
            if self.watch is not None:
                self.watch.close()
        return self._finish()

    def _preflight(self) -> dict:
        """The checklist on the model this run starts from (copies only, RNG forked: the run is
        the same with or without it). Results go to preflight.json and the record; a failed
        check stops the run before any compute is spent on it."""
        from babysit.preflight.checklist import run_checks  # lazy: the checklist builds on the trainer
        from babysit.preflight.setup import setup_from_spec

        results = run_checks(setup_from_spec(self.spec, self.data, self.model))
        atomic_write_text(self.run_dir / PREFLIGHT, json.dumps([r.as_dict() for r in results], indent=1))
        failed = [r for r in results if r.status == "fail"]
        if failed:
            raise TrainingError("preflight failed: " + "; ".join(f"{r.name}: {r.advice}" for r in failed)
                                + f" (details in {self.run_dir / PREFLIGHT}; train.preflight: false skips the checks)")
        return {r.name: r.status for r in results}

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
        if not math.isfinite(mean_loss):
            self.stop_reason = (f"non-finite loss ({mean_loss}) by step {self.step}; the last good "
                                f"checkpoint is kept. Lower optim.lr (now {lr:g}) or set train.grad_clip")
        for cb in self.callbacks:
            cb.on_log(self, self.step, scalars)

    def _evaluate(self) -> None:
        m = evaluate(self.model, self.val_split)
        train_m = evaluate(self.model, self.train_probe)
        metrics = {"val_loss": m["loss"], "val_acc": m["acc"], "train_probe_loss": train_m["loss"],
                   "train_acc": train_m["acc"]}
        self.record.log("eval", self.step, **metrics)
        self.schedule.on_eval(m["loss"])
        es = self.spec.train.early_stopping
        if es is not None:
            if m["loss"] < self.best["val_loss"] - es.min_delta:
                state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self.best = {"val_loss": m["loss"], "step": self.step, "state": state, "bad_evals": 0}
            else:
                self.best["bad_evals"] += 1
                if self.best["bad_evals"] >= es.patience:
                    self.stop_reason = (f"early stopping: val loss did not improve for {es.patience} "
                                        f"evaluations; best {self.best['val_loss']:.4f} at step {self.best['step']}")
        for cb in self.callbacks:
            cb.on_eval_end(self, self.step, metrics)

    def _finish(self) -> dict:
        restored = None
        if self.best.get("state") is not None:  # early stopping: end on the best weights
            self.model.load_state_dict(self.best["state"])
            restored = self.best["step"]
            save_checkpoint(self.run_dir / CHECKPOINT, self.state_dict())
        train_m = evaluate(self.model, self.train_split)
        val_m = evaluate(self.model, self.val_split)
        summary = {
            "name": self.spec.name, "steps": self.step, "total_steps": self.total_steps,
            "train_loss": train_m["loss"], "train_acc": train_m["acc"],
            "val_loss": val_m["loss"], "val_acc": val_m["acc"],
            "wall_s": round(self.elapsed + time.perf_counter() - self._t0, 3),
            "device": str(self.device), "parameters": sum(p.numel() for p in self.model.parameters()),
            "stopped": self.stop_reason, "restored_best_step": restored,
        }
        summary["steps_per_s"] = round(self.step / max(summary["wall_s"], 1e-9), 1)
        text = json.dumps(summary, indent=2)
        atomic_write_text(self.run_dir / SUMMARY, text)  # on disk even if a callback fails below
        for cb in self.callbacks:
            cb.on_train_end(self, summary)  # callbacks add their own results (EMA, snapshots, ...)
        if json.dumps(summary, indent=2) != text:
            atomic_write_text(self.run_dir / SUMMARY, json.dumps(summary, indent=2))
        return summary
