"""Device and seeds: what every run, check and benchmark sets up the same way."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Iterator

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


# cuBLAS is deterministic only with a fixed workspace (NVIDIA's cuBLAS docs, "Results
# reproducibility"); read when a cuBLAS handle is made, so set before the first matrix product.
CUBLAS_WORKSPACE = ":4096:8"


@contextmanager
def deterministic(on: bool) -> Iterator[None]:
    """train.deterministic: torch's deterministic algorithms (an op without one warns, it does not
    stop the run: Watch's histograms use bincount, which has none on CUDA and does not touch the
    weights), cuDNN's deterministic kernels without autotuning, cuBLAS's fixed workspace. The
    previous settings come back on exit."""
    if not on:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
