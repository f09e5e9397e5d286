"""Batches by index into tensors that already sit on the device: no per-example Python, no copies
from the host per step."""
from __future__ import annotations

import torch

from babysit.data import Split


class BatchSampler:
    """Shuffles once per epoch (a permutation from its own generator), then slices it. Drops the
    last partial batch, which would otherwise be tiny and upset BatchNorm's batch statistics.
    Its state (epoch, position, generator state at the epoch's start) is all a resume needs."""

    def __init__(self, split: Split, batch_size: int, seed: int):
        self.split = split
        self.n = len(split)
        self.batch_size = min(batch_size, self.n)
        self.per_epoch = self.batches_per_epoch(self.n, batch_size)
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.pos = 0
        self._new_epoch()

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int) -> int:
        """Full batches of `n` examples (the partial last one is dropped), at least one."""
        return max(n // min(batch_size, n), 1)

    def _new_epoch(self) -> None:
        self.epoch_gen_state = self.gen.get_state()
        self.perm = torch.randperm(self.n, generator=self.gen).to(self.split.x.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos == self.per_epoch:
            self.epoch += 1
            self.pos = 0
            self._new_epoch()
        b = self.batch_size
        idx = self.perm[self.pos * b:(self.pos + 1) * b]
        self.pos += 1
        return self.split.x[idx], self.split.y[idx]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "gen": self.epoch_gen_state}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self.gen.set_state(state["gen"])
        self._new_epoch()
