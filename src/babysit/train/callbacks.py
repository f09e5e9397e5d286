"""Keras-style callbacks: every hook is a no-op. The Trainer calls `on_step_end` only on callbacks
that override it, so a hook nobody overrides costs nothing in the hot path."""
from __future__ import annotations

import time

import torch


class Callback:
    def on_train_begin(self, trainer) -> None: ...
    def on_step_end(self, trainer, step: int, loss: torch.Tensor) -> None: ...  # loss stays on device
    def on_log(self, trainer, step: int, scalars: dict) -> None: ...
    def on_eval_end(self, trainer, step: int, metrics: dict) -> None: ...
    def on_train_end(self, trainer, summary: dict) -> None: ...

    def overrides(self, hook: str) -> bool:
        return getattr(type(self), hook) is not getattr(Callback, hook)


class ProgressBar(Callback):
    """A rich progress bar with loss and rate, refreshed at each log flush, never per step."""

    def on_train_begin(self, trainer) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                                 TimeRemainingColumn(), transient=False)
        self.task = self.progress.add_task(trainer.spec.name, total=trainer.total_steps,
                                           completed=trainer.step, loss="-", rate="")
        self.t0, self.s0 = time.perf_counter(), trainer.step
        self.progress.start()

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        rate = (step - self.s0) / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, completed=step, loss=f"{scalars['train_loss']:.4f}",
                             rate=f"{rate:,.0f} steps/s")

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        acc = f" acc {metrics['val_acc']:.3f}" if "val_acc" in metrics else ""
        self.progress.console.print(f"step {step:>8}: val loss {metrics['val_loss']:.4f}{acc}")

    def on_train_end(self, trainer, summary: dict) -> None:
        self.progress.update(self.task, completed=trainer.step)
        self.progress.stop()
