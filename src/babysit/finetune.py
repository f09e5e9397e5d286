"""Transfer learning (LECTURES.md §1, L7): start from a trained babysit run, re-initialize the
head for the new classes, train the head alone with the body frozen, then fine-tune everything
with a lower learning rate for the body (so the head's large early gradients do not wreck the
features the body learnt). The body includes the input preprocessing it was trained with. The head
is out/out_bn of babysit's models; of a user's network (model.kind python), finetune.head or its
last nn.Linear (babysit.models.head_modules)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from babysit.data import Dataset
from babysit.errors import TrainingError
from babysit.layout import CHECKPOINT
from babysit.models import STOCK_HEAD, head_modules
from babysit.session import build_trainer
from babysit.spec import Spec
from babysit.train import Callback, Trainer
from babysit.train.checkpoint import load_checkpoint
from babysit.train.optim import build_optimizer

def is_head(key: str, heads: tuple[str, ...] = STOCK_HEAD) -> bool:
    """A parameter or module name inside one of the head modules."""
    return any(key == h or key.startswith(h + ".") for h in heads)


def load_body(model: nn.Module, source: dict, source_name: str, heads: tuple[str, ...] = STOCK_HEAD) -> None:
    """Copy every non-head tensor of `source` into `model`; the head keeps its fresh init.
    The bodies must match key for key and shape for shape, or nothing is copied."""
    target = {k: v for k, v in model.state_dict().items() if not is_head(k, heads)}
    body = {k: v for k, v in source.items() if not is_head(k, heads)}
    only_src, only_new = sorted(body.keys() - target.keys()), sorted(target.keys() - body.keys())
    shapes = [f"{k}: {tuple(body[k].shape)} in {source_name} vs {tuple(target[k].shape)} in the new spec"
              for k in sorted(body.keys() & target.keys()) if body[k].shape != target[k].shape]
    if only_src or only_new or shapes:
        parts = ([f"only in {source_name}: {', '.join(only_src)}"] if only_src else []) + \
                ([f"only in the new spec: {', '.join(only_new)}"] if only_new else []) + shapes
        raise TrainingError("cannot fine-tune: the body of the new spec's model differs from the run's ("
                            + "; ".join(parts) + "). Keep model.* and data.preprocess as in the source run; "
                            f"only the head ({', '.join(heads)}) may change")
    model.load_state_dict(body, strict=False)


class HeadFirst(Callback):
    """Freezes the body (no gradients, BatchNorm running statistics held) for the first
    `head_steps` steps, then releases it."""

    def __init__(self, source: str, head_steps: int, factor: float, heads: tuple[str, ...] = STOCK_HEAD):
        self.source, self.head_steps, self.factor, self.heads = source, head_steps, factor, heads
        self.momenta: list = []

    def on_setup(self, trainer) -> None:
        if self.head_steps > trainer.total_steps:
            raise TrainingError(f"finetune.head_steps ({self.head_steps}) exceeds the run's "
                                f"{trainer.total_steps} steps; lower it or raise train.steps")

    def on_train_begin(self, trainer) -> None:
        model = trainer.model
        self.body = [p for n, p in model.named_parameters() if not is_head(n, self.heads)]
        self.body_bn = [m for n, m in model.named_modules() if isinstance(m, _BatchNorm) and not is_head(n, self.heads)]
        if trainer.step < self.head_steps:
            for p in self.body:
                p.requires_grad_(False)
            self.momenta = [m.momentum for m in self.body_bn]
            for m in self.body_bn:
                m.momentum = 0.0  # running = (1 - 0) * running: the statistics stay put

    def on_step_end(self, trainer, step: int, loss: torch.Tensor) -> None:
        if step == self.head_steps:
            for p in self.body:
                p.requires_grad_(True)
            for m, mom in zip(self.body_bn, self.momenta):
                m.momentum = mom

    def on_train_end(self, trainer, summary: dict) -> None:
        summary.update(finetuned_from=self.source, head_steps=self.head_steps,
                       body_lr_factor=self.factor)


def build_finetune(source_run: Path | str, spec: Spec, out: Path | str, *, progress: bool = True,
                   data: Optional[Dataset] = None, callbacks=()) -> Trainer:
    """A Trainer for `spec` that starts from the body of `source_run`'s last checkpoint, its body
    learning at optim.lr x finetune.body_lr_factor."""
    if spec.optim.name == "lbfgs":
        raise TrainingError("finetune needs per-layer learning rates, which optim 'lbfgs' lacks in torch; "
                            "use sgd, adam, adamw, rmsprop or adagrad")
    source_run = Path(source_run)
    state = load_checkpoint(source_run / CHECKPOINT, map_location="cpu")["model"]
    f = spec.finetune
    head_first = HeadFirst(str(source_run), f.head_steps, f.body_lr_factor)

    def optimizer(model: nn.Module) -> torch.optim.Optimizer:  # called once the model is built
        head_first.heads = head_modules(model, spec)
        return build_optimizer(model, spec.optim,
                               lambda name: 1.0 if is_head(name, head_first.heads) else f.body_lr_factor)

    trainer = build_trainer(spec, out, progress=progress, data=data, callbacks=[head_first, *callbacks],
                            optimizer_factory=optimizer)
    load_body(trainer.model, state, str(source_run), head_first.heads)  # the head keeps its fresh init
    return trainer
