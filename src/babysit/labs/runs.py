"""Training runs inside a lab: babysit's own Trainer (session.build_trainer) on a spec, with a
callback that keeps the loss log and the evaluations in memory for the lab's figures. No doctor
and no progress bar: a lab measures, and prints its own table. Run folders go to OUT/runs/."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterable, Optional

import torch

from babysit.data import Dataset
from babysit.session import build_trainer
from babysit.spec import Spec
from babysit.train import Callback

RUNS = "runs"  # a lab's training runs: OUT/runs/<label>; `babysit plot` and `babysit doctor` read them
# names: 27 characters, so a net that knows nothing scores ln(27) = 3.30 (LECTURES.md §2 item 3)
NAMES_CHANCE = math.log(27)
QUIET = ["watch.enabled=false", "train.checkpoint_every=100000000"]  # a lab reads its runs' summaries and curves


class Curves(Callback):
    """The train-loss log (one mean per log window) and every evaluation of one run."""

    def __init__(self):
        self.train: list[tuple[int, float]] = []
        self.evals: list[dict] = []

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        self.train.append((step, scalars["train_loss"]))

    def on_eval_end(self, trainer, step: int, metrics: dict) -> None:
        self.evals.append({"step": step, **metrics})


@dataclasses.dataclass
class Run:
    label: str
    summary: dict
    curves: Curves
    model: torch.nn.Module  # as the run ended

    @property
    def train_loss(self) -> float:
        """The final loss on the whole training split; infinity when the run blew up."""
        v = self.summary["train_loss"]
        return v if math.isfinite(v) else math.inf


def train(spec: Spec, out: Path, label: str, data: Optional[Dataset] = None,
          callbacks: Iterable[Callback] = ()) -> Run:
    curves = Curves()
    trainer = build_trainer(spec, Path(out) / RUNS / label, progress=False, doctor=False, data=data,
                            callbacks=[curves, *callbacks])
    summary = trainer.fit()
    if summary.get("diverged"):  # a lab compares runs as they ended, not the checkpoint a failed run keeps
        summary = {**summary, **{k: v for k, v in summary["diverged"].items() if k != "step"}}
    return Run(label, summary, curves, trainer.model)


def subset(data: Dataset, n: Optional[int]) -> Dataset:
    """The first n training examples (None: all); val and test stay whole."""
    return data if n is None else dataclasses.replace(data, train=data.train[:n])
