"""babysit in PyTorch Lightning: one callback.

    import lightning as L
    from babysit.lightning import BabysitCallback

    trainer = L.Trainer(max_steps=5000, callbacks=[BabysitCallback(stop_on_error=True)])
    trainer.fit(model, train_loader)

At the start of training the checklist's cheap checks run on a fixed sample of the training
Dataset; every layer is watched (babysit.Watch, one sampled step in `every`); the doctor's stop
rules read each log window and its full rules every validation and the end. The run folder,
LOG_DIR/babysit by default, holds what `babysit train` writes there (preflight.json,
metrics.jsonl, watch.jsonl, findings.json, plots/), so `babysit doctor`, `stats` and `plot` read
it. The findings are printed at the end; with stop_on_error an error finding stops the fit.

The doctor is babysit's own DoctorCallback, driven through `_Run`, the view of a Lightning fit it
reads (the model, the Watch, the step, where to write), so a Lightning fit and babysit's Trainer
are judged by the same code.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

try:
    import lightning.pytorch as pl
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError("babysit.lightning needs PyTorch Lightning: pip install 'babysit[lightning]'") from exc

from babysit.data import Dataset
from babysit.data.stream import StreamSplit
from babysit.doctor.callback import DoctorCallback
from babysit.layout import PREFLIGHT, atomic_write_text
from babysit.library import Watch
from babysit.preflight import DEFAULT_CHECKS, run_checks
from babysit.preflight.setup import setup_from_user
from babysit.watch.record import Record

# Steps per log window: the doctor's stop rules run once per window (one host sync), as at the
# Trainer's log_every (its default: 100 steps); a window costs about 6 ms on a loaded CPU
# (benchmarks/lightning_overhead.py, profiled), well under 1% of 100 steps.
LOG_EVERY = 100
VAL_LOSS_KEYS = ("val_loss", "val/loss", "valid_loss", "validation_loss")
VAL_ACC_KEYS = ("val_acc", "val/acc", "valid_acc", "validation_acc")


class _Results:
    """The checklist results the doctor reads (a ChecklistCallback's `results`)."""

    def __init__(self, results: list[dict]):
        self.results = results


class _Data:
    def __init__(self, num_classes: Optional[int]):
        self.num_classes = num_classes


class _Run:
    """What the doctor reads of a run, for a Lightning fit: the attributes of babysit's Trainer
    that DoctorCallback uses."""

    resume = False

    def __init__(self, model, watch: Watch, run_dir: Path, num_classes: Optional[int], loss_kind: Optional[str]):
        self.model, self.watch, self.run_dir, self.loss_kind = model, watch, run_dir, loss_kind
        self.data = _Data(num_classes)
        self.step = 0
        self.stop_reason: Optional[str] = None

    @property
    def batch_size(self) -> Optional[int]:
        return self.watch.batch_size

    def stop(self, reason: str, failed: bool) -> None:
        """As Trainer.stop: the first reason wins; the callback ends the fit at the next batch."""
        if self.stop_reason is None:
            self.stop_reason = reason


def _has_forward(module: torch.nn.Module) -> bool:
    """The module defines forward itself (torch's and Lightning's own raise NotImplementedError)."""
    return type(module).forward not in (torch.nn.Module.forward, pl.LightningModule.forward)


def _first(metrics: dict, keys: Sequence[str]) -> Optional[float]:
    for k in keys:
        if k in metrics:
            v = metrics[k]
            return float(v.detach().cpu()) if isinstance(v, torch.Tensor) else float(v)
    return None


class BabysitCallback(pl.Callback):
    def __init__(self, run_dir: Optional[str | Path] = None, *, every: int = 200, log_every: int = LOG_EVERY,
                 stop_on_error: bool = False, checks: Sequence[str] = DEFAULT_CHECKS,
                 num_classes: Optional[int] = None, loss_kind: Optional[str] = None, plots: bool = True,
                 echo: Callable[[str], None] = print):
        """run_dir: where the run folder goes (default: the Lightning log dir's babysit/). every:
        Watch samples one step in `every`. checks: the checklist's checks run at the start (the
        cheap data check by default; () for none). num_classes: C for the ln(C) rules (default:
        the output layer's width). loss_kind: what the loss is (cross_entropy, mse, ...; None:
        cross-entropy). stop_on_error: an error finding stops the fit (trainer.should_stop)."""
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.every, self.log_every, self.stop_on_error = every, log_every, stop_on_error
        self.checks, self.num_classes, self.loss_kind = list(checks), num_classes, loss_kind
        self.plots, self.echo = plots, echo
        self.watch: Optional[Watch] = None
        self.findings: list = []
        self.preflight: list[dict] = []

    # -- start -------------------------------------------------------------------------------
    def _folder(self, trainer) -> Path:
        if self.run_dir is not None:
            return self.run_dir
        return Path(trainer.log_dir or trainer.default_root_dir) / "babysit"

    def on_train_start(self, trainer, pl_module) -> None:
        self.run_dir = self._folder(trainer)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        if self.checks:
            self.preflight = self._run_checks(trainer, pl_module, optimizer)
            atomic_write_text(self.run_dir / PREFLIGHT, json.dumps(self.preflight, indent=1))
        self.watch = Watch(pl_module, optimizer, every=self.every, run_dir=self.run_dir, flush_every=1 << 62)
        self.record = Record(self.run_dir)
        self.record.open()
        self.run = _Run(pl_module, self.watch, self.run_dir, self.num_classes, self.loss_kind)
        self.doctor = DoctorCallback(_Results(self.preflight), stop_on_error=self.stop_on_error)
        self._seen_step = trainer.global_step
        self._logged = 0  # losses of the Watch already in a log window

    def _run_checks(self, trainer, pl_module, optimizer) -> list[dict]:
        """The checks on a fixed sample of the training Dataset, read by babysit's own loader (the
        fit's loaders, and the random state, are left alone); skipped when there is none to read."""
        loader = trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            self.echo("babysit: no training Dataset to sample; the checklist was skipped")
            return []
        with torch.random.fork_rng(devices=[]):
            try:
                sample = StreamSplit(dataset).in_memory()
            except (ValueError, TypeError, RuntimeError) as exc:  # items that are not (x, y) pairs
                self.echo(f"babysit: the training Dataset's items are not (x, y) pairs ({exc}); the checklist "
                          "was skipped")
                return []
            if sample.y.dtype.is_floating_point:
                self.echo("babysit: real-valued targets; the checklist's label checks were skipped")
                return []
            # C: given, else the width of the module's output, else (no forward: a LightningModule
            # may compute everything in training_step) 1 + the largest label of the sample
            classes = self.num_classes or (None if _has_forward(pl_module) else int(sample.y.max()) + 1)
            setup = setup_from_user(pl_module, None, (sample.x, sample.y.long()), num_classes=classes,
                                    optimizer=optimizer)
            setup.data = Dataset(setup.data.train, setup.data.val, setup.data.test, setup.data.num_classes,
                                 setup.data.input_shape, source="the training Dataset (a sample)")
            return [r.as_dict() for r in run_checks(setup, self.checks)]

    # -- every step --------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._seen_step:  # no optimizer step (gradient accumulation)
            return
        self._seen_step = trainer.global_step
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.watch.step(loss if isinstance(loss, torch.Tensor) else None)
        self.run.step = self.watch.steps
        if self.run.step % self.log_every == 0:
            self._log(trainer)

    def _log(self, trainer) -> None:
        """A log window: its mean loss to metrics.jsonl, the stop rules over it."""
        self.watch.flush()  # the one sync per window
        window = self.watch.losses[self._logged:]
        self._logged = len(self.watch.losses)
        if not window:
            return
        mean = sum(window) / len(window)
        self.record.log("train", self.run.step, train_loss=mean)
        self.doctor.on_log(self.run, self.run.step, {"train_loss": mean})
        self._maybe_stop(trainer)

    def _maybe_stop(self, trainer) -> None:
        if self.run.stop_reason is not None and self.stop_on_error:
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.watch is None or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        val_loss = _first(metrics, VAL_LOSS_KEYS)
        if val_loss is None or not math.isfinite(val_loss):
            return
        row = {"val_loss": val_loss}
        acc = _first(metrics, VAL_ACC_KEYS)
        if acc is not None:
            row["val_acc"] = acc
        self.record.log("eval", self.run.step, **row)
        self.doctor.on_eval_end(self.run, self.run.step, row)
        self._maybe_stop(trainer)

    # -- end ---------------------------------------------------------------------------------
    def on_train_end(self, trainer, pl_module) -> None:
        if self.watch is None:
            return
        self._log(trainer)
        self.doctor.on_train_end(self.run, {"stopped": self.run.stop_reason})
        self.watch.close()
        self.record.close()
        self.findings = self.doctor.findings
        if self.plots:
            from babysit.report.plots import write_plots
            write_plots(self.run_dir)
        self.echo(f"babysit: {len(self.findings)} finding(s) in {self.run_dir}"
                  + (f" (stopped: {self.run.stop_reason})" if self.run.stop_reason else ""))
        for f in self.findings:
            self.echo(f.line())
