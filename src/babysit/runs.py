"""Run directories on disk: where a new one goes, how a finished one is loaded back, and which
runs an ensemble may combine."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from babysit.build import select_device
from babysit.data import Dataset, build_data
from babysit.errors import CheckpointError, DataError
from babysit.layout import CHECKPOINT, EMA, SPEC, make_dir, storage_error
from babysit.models import build_model
from babysit.spec import Spec, load_spec
from babysit.train.checkpoint import load_checkpoint

RUNS_ROOT = Path("runs")


def new_run_dir(name: str, root: Path = RUNS_ROOT) -> Path:
    """runs/<name>, or runs/<name>-2, -3, ...: a new run never overwrites an old one. The folder
    is created here (mkdir fails if it exists), so two runs started together cannot share one."""
    make_dir(root)
    n = 1
    while True:
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise storage_error(path, exc, "create the folder") from None


@dataclass
class LoadedRun:
    spec: Spec
    data: Dataset
    model: nn.Module
    step: int


WEIGHTS = ("last", "ema")  # checkpoint.pt, or the EMA average (train.ema) in ema.pt


def load_run(run_dir: Path | str, device: str = "auto", weights: str = "last") -> LoadedRun:
    run_dir = Path(run_dir)
    if weights not in WEIGHTS:
        raise CheckpointError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if not (run_dir / SPEC).is_file():
        raise CheckpointError(f"{run_dir} is not a babysit run (no spec.yaml); "
                              "give the directory that `babysit train` wrote")
    spec = load_spec(run_dir / SPEC)
    dev = select_device(device)
    if weights == "ema" and not (run_dir / EMA).is_file():
        raise CheckpointError(f"{run_dir} has no {EMA}; train it with train.ema (e.g. --set "
                              "'train.ema={decay: 0.999}') or use --weights last")
    state = load_checkpoint(run_dir / (CHECKPOINT if weights == "last" else EMA), map_location=dev)
    data = build_data(spec.data)
    model = build_model(spec, data, init=False).to(dev)
    model.load_state_dict(state["model"])
    model.eval()
    return LoadedRun(spec, data, model, state["step"])


def member_dirs(paths: Sequence[Path | str]) -> list[Path]:
    """Each path is a run (it has spec.yaml) or a folder of runs (e.g. `train --seeds`' parent)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / SPEC).is_file():
            out.append(p)
            continue
        children = sorted(c for c in p.iterdir() if (c / SPEC).is_file()) if p.is_dir() else []
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
    ref_x = ref.in_memory()  # all of an in-memory split; a fixed sample of a streamed one
    for run, name in zip(runs[1:], names[1:]):
        part = run.data.splits()[split]
        x = part.in_memory() if len(part) == len(ref) else None
        same = (run.data.num_classes == first.data.num_classes and x is not None and x.x.shape == ref_x.x.shape
                and torch.equal(x.y.cpu(), ref_x.y.cpu()) and torch.equal(x.x.cpu(), ref_x.x.cpu()))
        if not same:
            a, b = _data_fields(first.spec), _data_fields(run.spec)
            diff = ", ".join(f"data.{k}: {a[k]!r} vs {b[k]!r}" for k in a if a.get(k) != b.get(k))
            raise DataError(f"cannot ensemble {first_name} and {name}: they were trained on different data "
                            f"({first.data.num_classes} vs {run.data.num_classes} classes, "
                            f"{len(ref)} vs {len(part)} {split} examples; {diff or 'same data spec'}). "
                            "Ensemble only runs of the same data and classes")


def summary_line(summary: dict) -> str:
    """The line `babysit train` prints for a finished run (and `stopped: ...` when it stopped early)."""
    def num(key):
        return "-" if summary.get(key) is None else f"{summary[key]:.4f}"
    kept = f" (model of step {summary['kept_step']})" if summary.get("kept_step") is not None else ""
    line = (f"train loss {num('train_loss')}  val loss {num('val_loss')}  val acc {num('val_acc')}{kept}  "
            f"({summary['steps']} steps, {summary['wall_s']:.1f} s, {summary['steps_per_s']:.0f} steps/s, "
            f"{summary['device']})")
    return line + (f"\nstopped: {summary['stopped']}" if summary.get("stopped") else "")
