"""Keras-style callbacks: every hook is a no-op. The Trainer calls `on_step_end` only on callbacks
that override it, so a hook nobody overrides costs nothing in the hot path."""
from __future__ import annotations

import time

import torch


class Callback:
    # Before anything is written or trained, on a new run (not a resumed one): the checklist, a
    # fine-tune loading its weights. An error raised here leaves the run folder empty.
    def on_setup(self, trainer) -> None: ...
    def on_train_begin(self, trainer) -> None: ...
    def on_step_end(self, trainer, step: int, loss: torch.Tensor) -> None: ...  # loss stays on device
    def on_log(self, trainer, step: int, scalars: dict) -> None: ...
    def on_eval_end(self, trainer, step: int, metrics: dict) -> None: ...
    def on_train_end(self, trainer, summary: dict) -> None: ...
    # State that must survive a resume (saved in checkpoint.pt under the callback's key: its class
    # name, then "#2", "#3" for more of one class); None: none.
    def state_dict(self): return None  # noqa: E704
    def load_state_dict(self, state) -> None: ...

    def overrides(self, hook: str) -> bool:
        return getattr(type(self), hook) is not getattr(Callback, hook)


class ProgressBar(Callback):
    """A rich progress bar with loss and rate. No refresh thread (it would take the GIL from the
    training loop ten times a second): it is redrawn at log flushes, at most every REFRESH_S."""

    REFRESH_S = 0.25

    def on_train_begin(self, trainer) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                                 TimeRemainingColumn(), transient=False, auto_refresh=False)
        self.task = self.progress.add_task(trainer.spec.name, total=trainer.total_steps,
                                           completed=trainer.step, loss="-", rate="")
        self.t0, self.s0 = time.perf_counter(), trainer.step
        self.last_draw = 0.0
        self.progress.start()

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        now = time.perf_counter()
        if now - self.last_draw < self.REFRESH_S:
            return
        self.last_draw = now
        rate = (step - self.s0) / max(now - self.t0, 1e-9)
        self.progress.update(self.task, completed=step, loss=f"{scalars['train_loss']:.4f}",
                             rate=f"{rate:,.0f} steps/s", refresh=True)

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        acc = f" acc {metrics['val_acc']:.3f}" if "val_acc" in metrics else ""
        self.progress.console.print(f"step {step:>8}: val loss {metrics['val_loss']:.4f}{acc}")

    def on_train_end(self, trainer, summary: dict) -> None:
        self.progress.update(self.task, completed=trainer.step, refresh=True)
        self.progress.stop()
