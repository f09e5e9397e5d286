"""Snapshot ensembles (LECTURES.md §1, L7): one run with cosine annealing and warm restarts; the
weights at the end of each cycle (lr at its minimum, a local optimum) are saved, and their
averaged probabilities evaluated at the end: several members for the cost of one run."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from babysit.errors import TrainingError
from babysit.layout import SNAPSHOTS
from babysit.train.callbacks import Callback
from babysit.train.checkpoint import load_checkpoint, save_checkpoint
from babysit.train.evaluate import evaluate


def cycle_ends(warmup: int, cycle: int, mult: int, total: int) -> list[int]:
    """Steps at which a CosineAnnealingWarmRestarts cycle (started after the warm-up) ends."""
    ends, start, length = [], warmup, cycle
    while start + length <= total:
        start += length
        ends.append(start)
        length *= mult
    return ends


def snapshot_paths(run_dir: Path | str) -> list[Path]:
    return sorted((Path(run_dir) / SNAPSHOTS).glob("snapshot-*.pt"))


class Snapshots(Callback):
    def on_train_begin(self, trainer) -> None:
        s = trainer.spec.schedule
        self.ends = set(cycle_ends(s.warmup_steps, s.cycle_steps, s.cycle_mult, trainer.total_steps))
        if not self.ends:
            raise TrainingError(f"train.snapshots: no cosine_restarts cycle ends within the run "
                                f"({trainer.total_steps} steps, schedule.cycle_steps {s.cycle_steps} after "
                                f"{s.warmup_steps} warm-up steps); lower cycle_steps or train longer")
        (trainer.run_dir / SNAPSHOTS).mkdir(exist_ok=True)

    def on_step_end(self, trainer, step: int, loss: torch.Tensor) -> None:
        if step in self.ends:
            state = {"model": trainer.model.state_dict(), "step": step}
            save_checkpoint(trainer.run_dir / SNAPSHOTS / f"snapshot-{step:09d}.pt", state)

    def on_train_end(self, trainer, summary: dict) -> None:
        members = load_snapshot_members(trainer.model, trainer.run_dir)
        if not members:
            return
        r = evaluate(members, trainer.val_split, loss=trainer.loss_fn)
        summary.update(snapshots=len(members), snapshot_val_loss=r["loss"],
                       snapshot_val_acc=r["acc"], snapshot_mean_member_val_acc=r["mean_member_acc"])


def load_snapshot_members(model: nn.Module, run_dir: Path) -> list[nn.Module]:
    """One copy of `model` per snapshot of the run, in eval mode; a damaged snapshot is a
    CheckpointError naming the file."""
    device = next(model.parameters()).device
    members = []
    for path in snapshot_paths(run_dir):
        member = copy.deepcopy(model)
        member.load_state_dict(load_checkpoint(path, map_location=device)["model"])
        members.append(member.eval())
    return members
