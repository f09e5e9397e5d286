"""Checkpoints written atomically (temp file, fsync, rename): a kill mid-write leaves the previous
checkpoint whole. Loading a damaged one says which file and what to do."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from babysit.errors import CheckpointError
from babysit.layout import atomic_write_bytes


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write_bytes(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; was the run started with this --out?")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                              "nothing was changed. Restart the run without --resume, "
                              "or restore the file from a backup") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a babysit checkpoint (no 'model' entry)")
    return state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
