"""Device and seeds: what every run, check and benchmark sets up the same way."""
from __future__ import annotations

import random

import torch

from babysit.errors import TrainingError


def select_device(name: str = "auto") -> torch.device:
    """auto: CUDA when torch sees a GPU, else the CPU. An explicit device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
