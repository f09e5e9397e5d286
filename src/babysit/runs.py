"""A run directory on disk: where a new one goes, and how a finished one is loaded back."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from babysit.data import Dataset, build_data
from babysit.models import build_model
from babysit.spec import Spec, load_spec
from babysit.train.averaging import EMA_FILE
from babysit.train.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint
from babysit.train.trainer import select_device

RUNS_ROOT = Path("runs")


def new_run_dir(name: str, root: Path = RUNS_ROOT) -> Path:
    """runs/<name>, or runs/<name>-2, -3, ...: a new run never overwrites an old one. The folder
    is created here (mkdir fails if it exists), so two runs started together cannot share one."""
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


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
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if not (run_dir / "spec.yaml").is_file():
        raise CheckpointError(f"{run_dir} is not a babysit run (no spec.yaml); "
                              "give the directory that `babysit train` wrote")
    spec = load_spec(run_dir / "spec.yaml")
    dev = select_device(device)
    if weights == "ema" and not (run_dir / EMA_FILE).is_file():
        raise CheckpointError(f"{run_dir} has no {EMA_FILE}; train it with train.ema (e.g. --set "
                              "'train.ema={decay: 0.999}') or use --weights last")
    state = load_checkpoint(run_dir / (CHECKPOINT if weights == "last" else EMA_FILE), map_location=dev)
    data = build_data(spec.data)
    model = build_model(spec, data, init=False).to(dev)
    model.load_state_dict(state["model"])
    model.eval()
    return LoadedRun(spec, data, model, state["step"])
