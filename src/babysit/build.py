"""Device and seeds: what every run, check and benchmark sets up the same way."""
from __future__ import annotations

import os
import random

import torch

from babysit.errors import TrainingError


# Where "auto" resolves when set (cpu, cuda, cuda:1): pins every run, check and subprocess of a
# session to one device; the test suite sets it from BABYSIT_TEST_DEVICE (tests/conftest.py).
DEVICE_ENV = "BABYSIT_DEVICE"


def select_device(name: str = "auto") -> torch.device:
    """auto: $BABYSIT_DEVICE when set, else CUDA when torch sees a GPU, else the CPU. An explicit
    device must exist."""
    if name == "auto":
        name = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
        if name != "cpu" and not name.startswith("cuda"):
            raise TrainingError(f"{DEVICE_ENV} is '{name}'; use cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
