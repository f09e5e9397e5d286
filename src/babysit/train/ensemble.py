"""Ensembles (LECTURES.md §1, L7): the average of the members' softmax probabilities, never of
their logits; a 1-member ensemble is that member. Members come from runs, a parent folder of
runs (`babysit train --seeds`) or a run's snapshots, and must have seen the very same data."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Split
from babysit.train.checkpoint import CheckpointError
from babysit.train.evaluate import EVAL_CHUNK


@torch.no_grad()
def member_log_probs(models: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Each member's log-probabilities in eval mode, stacked: (members, examples, classes)."""
    if not models:
        raise ValueError("an ensemble needs at least one member, got none")
    device = next(models[0].parameters()).device
    logps = []
    for m in models:
        was_training = m.training
        m.eval()
        logps.append(F.log_softmax(m(x.to(next(m.parameters()).device)).float(), dim=1).to(device))
        m.train(was_training)
    widths = sorted({lp.shape[1] for lp in logps})
    if len(widths) > 1:
        raise ValueError(f"ensemble members predict different numbers of classes: {widths}")
    return torch.stack(logps)


def average_log_probs(logps: torch.Tensor) -> torch.Tensor:
    """log of the mean of the members' probabilities: logsumexp - log M (stable)."""
    return torch.logsumexp(logps, dim=0) - math.log(logps.shape[0])


def ensemble_log_probs(models: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return average_log_probs(member_log_probs(models, x))


@torch.no_grad()
def evaluate_ensemble(models: Sequence[nn.Module], split: Split, chunk: int = EVAL_CHUNK) -> dict:
    """Loss (NLL of the averaged probabilities) and accuracy of the ensemble, and each member's
    accuracy, so the gain over a single model can be read off."""
    if len(split) == 0:
        raise ValueError("cannot evaluate an ensemble on an empty split")
    device = next(models[0].parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    member_correct = torch.zeros(len(models), device=device, dtype=torch.long)
    for i in range(0, len(split), chunk):
        x, y = split.x[i:i + chunk].to(device), split.y[i:i + chunk].to(device)
        logps = member_log_probs(models, x)
        logp = average_log_probs(logps)
        loss_sum += F.nll_loss(logp, y, reduction="sum")
        correct += (logp.argmax(1) == y).sum()
        member_correct += (logps.argmax(2) == y).sum(1)
    n = len(split)
    member_acc = (member_correct.double() / n).tolist()
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n, "members": len(models),
            "member_acc": member_acc, "mean_member_acc": sum(member_acc) / len(member_acc)}


def member_dirs(paths: Sequence[Path | str]) -> list[Path]:
    """Each path is a run (it has spec.yaml) or a folder of runs (e.g. `train --seeds`' parent)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "spec.yaml").is_file():
            out.append(p)
            continue
        children = sorted(c for c in p.iterdir() if (c / "spec.yaml").is_file()) if p.is_dir() else []
        if not children:
            raise CheckpointError(f"{p} is neither a babysit run (no spec.yaml) nor a folder of runs; "
                                  "give run directories written by `babysit train`")
        out.extend(children)
    return out


def _data_fields(spec) -> dict:
    return spec.data.model_dump(mode="json")


def check_same_data(runs: Sequence, names: Sequence[str], split: str) -> None:
    """Averaging probabilities only means something over the same examples and classes: compare
    the classes and the evaluated split itself, and name the spec fields that differ."""
    first, first_name = runs[0], names[0]
    ref = first.data.splits()[split]
    for run, name in zip(runs[1:], names[1:]):
        part = run.data.splits()[split]
        same = (run.data.num_classes == first.data.num_classes and part.x.shape == ref.x.shape
                and torch.equal(part.y.cpu(), ref.y.cpu()) and torch.equal(part.x.cpu(), ref.x.cpu()))
        if not same:
            a, b = _data_fields(first.spec), _data_fields(run.spec)
            diff = ", ".join(f"data.{k}: {a[k]!r} vs {b[k]!r}" for k in a if a.get(k) != b.get(k))
            raise ValueError(f"cannot ensemble {first_name} and {name}: they were trained on different data "
                             f"({first.data.num_classes} vs {run.data.num_classes} classes, "
                             f"{len(ref)} vs {len(part)} {split} examples; {diff or 'same data spec'}). "
                             "Ensemble only runs of the same data and classes")
