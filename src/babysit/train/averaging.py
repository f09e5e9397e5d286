"""Polyak averaging / EMA of the weights (LECTURES.md §1, L7) with torch's AveragedModel. The
average of the weights is not the average of the BatchNorm statistics those weights produce, so
the averaged model's BN running statistics are recomputed on the train split at the end."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from babysit.data import Split
from babysit.layout import EMA as EMA_FILE
from babysit.train.callbacks import Callback
from babysit.train.checkpoint import save_checkpoint
from babysit.train.evaluate import EVAL_CHUNK, evaluate


@torch.no_grad()
def recompute_bn(model: nn.Module, split: Split, chunk: int = EVAL_CHUNK) -> bool:
    """Fresh BN running statistics: the plain average over the split, batches of `chunk` (torch's
    update_bn). False when the model has no BatchNorm (nothing to do)."""
    if not any(isinstance(m, _BatchNorm) for m in model.modules()):
        return False
    device = next(model.parameters()).device
    update_bn((x for x, _ in split.batches(chunk)), model, device=device)
    return True


class EMA(Callback):
    """train.ema: an exponential moving average updated after every optimizer step; at the end
    RUN/ema.pt holds it (`babysit eval RUN --weights ema`) and the summary has ema_val_*."""

    def __init__(self, decay: float):
        self.decay = decay
        self.averaged: AveragedModel | None = None
        self._resumed: dict | None = None  # a checkpoint's average, applied once the model exists

    def on_train_begin(self, trainer) -> None:
        # use_buffers=False: buffers (BN statistics) are not averaged but recomputed at the end.
        self.averaged = AveragedModel(trainer.model, multi_avg_fn=get_ema_multi_avg_fn(self.decay))
        if self._resumed is not None:  # a resumed run goes on averaging where it stopped
            self.averaged.load_state_dict(self._resumed)
            self._resumed = None

    def state_dict(self) -> dict | None:
        return None if self.averaged is None else self.averaged.state_dict()

    def load_state_dict(self, state) -> None:
        self._resumed = state

    def on_step_end(self, trainer, step: int, loss: torch.Tensor) -> None:
        self.averaged.update_parameters(trainer.model)

    def on_train_end(self, trainer, summary: dict) -> None:
        model = self.averaged.module
        recompute_bn(model, trainer.train_split)
        val = evaluate(model, trainer.val_split, loss=trainer.loss_fn)
        save_ema(trainer.run_dir, model, trainer.step, self.decay)
        summary.update(ema_val_loss=val["loss"], ema_val_acc=val["acc"],
                       ema_decay=self.decay)


def save_ema(run_dir: Path, model: nn.Module, step: int, decay: float) -> None:
    save_checkpoint(Path(run_dir) / EMA_FILE, {"model": model.state_dict(), "step": step, "decay": decay})
