"""Batches by index into tensors that already sit on the device: no per-example Python, no copies
from the host per step. A streamed split (a user's torch Dataset) is batched the same way by a
DataLoader: the same permutations, the same state, so a resumed run reads the very same batches."""
from __future__ import annotations

import torch

from babysit.data import Split
from babysit.data.stream import StreamSplit


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


class _EpochBatches:
    """A DataLoader's batch sampler: the epoch's batches of indices from the sampler's position on,
    read when the DataLoader starts an iteration (its prefetching reads ahead of `pos`)."""

    def __init__(self, owner: "LoaderSampler"):
        self.owner = owner

    def __iter__(self):
        o = self.owner
        for pos in range(o.pos, o.per_epoch):
            yield o.perm[pos * o.batch_size:(pos + 1) * o.batch_size].tolist()

    def __len__(self) -> int:
        return self.owner.per_epoch - self.owner.pos


class LoaderSampler(BatchSampler):
    """BatchSampler's batches of a streamed split, read by its DataLoader (data.loader: workers,
    pin_memory) and moved to the split's device. The loader restarts at each epoch, and after a
    resume, from the position in the state; its workers live as long as the sampler."""

    def __init__(self, split: StreamSplit, batch_size: int, seed: int):
        super().__init__(split, batch_size, seed)
        self.loader = split.loader(batch_sampler=_EpochBatches(self))
        self._batches = None

    def _new_epoch(self) -> None:
        self.epoch_gen_state = self.gen.get_state()
        self.perm = torch.randperm(self.n, generator=self.gen)
        self._batches = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos == self.per_epoch:
            self.epoch += 1
            self.pos = 0
            self._new_epoch()
        if self._batches is None:
            self._batches = iter(self.loader)
        x, y = next(self._batches)
        self.pos += 1
        return self.split.moved(x, y)

    def close(self) -> None:
        """Stops the loader's worker processes."""
        self._batches = None
        self.loader = None


def make_sampler(split, batch_size: int, seed: int) -> BatchSampler:
    """The sampler of a split: by index into tensors, or through a DataLoader when streamed."""
    if isinstance(split, StreamSplit):
        return LoaderSampler(split, batch_size, seed)
    return BatchSampler(split, batch_size, seed)
