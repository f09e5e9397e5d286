"""Splits read from a torch Dataset of (x, y) pairs, for data that do not fit in memory: batches
come from a DataLoader (data.loader: workers, pin_memory), and whatever needs tensors in memory
(the checklist's data checks, fitting data.preprocess, LSUV) reads a fixed sample.

Every DataLoader here draws its worker seeds from a generator of its own: torch's default draws
them from the global random state, which would make dropout masks depend on when loaders were
created, and a resumed run differ from an uninterrupted one.
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Subset

from babysit.data.base import Split

# Examples read into memory when a whole split is asked for (checks, preprocessing fits): the
# statistics they estimate (means, stds, class counts) are within a few percent at this size.
SAMPLE = 2048
SAMPLE_SEED = 0  # the same sample every time: checks and the preprocessing fit are repeatable
# Examples per DataLoader batch when evaluating: bounds the memory of large inputs (images).
EVAL_BATCH = 256


def as_float32(t: torch.Tensor) -> torch.Tensor:
    """float64 (numpy's and Python's default) to the float32 the model's weights are in."""
    return t.float() if t.dtype == torch.float64 else t


class StreamSplit:
    """One split of a torch Dataset, optionally restricted to `indices`; `to(device)` says where
    its batches go."""

    def __init__(self, dataset, workers: int = 0, pin_memory: bool = False,
                 indices: Optional[list[int]] = None, device=None):
        self.dataset, self.workers, self.pin_memory = dataset, workers, pin_memory
        self.indices, self.device = indices, device

    def __len__(self) -> int:
        return len(self.dataset) if self.indices is None else len(self.indices)

    @property
    def source(self):
        return self.dataset if self.indices is None else Subset(self.dataset, self.indices)

    def __getitem__(self, index: slice) -> "StreamSplit":
        if not isinstance(index, slice):
            raise TypeError(f"a streamed split is sliced, not indexed by {type(index).__name__}")
        return StreamSplit(self.dataset, self.workers, self.pin_memory, list(range(len(self)))[index]
                           if self.indices is None else self.indices[index], self.device)

    def to(self, device) -> "StreamSplit":
        return StreamSplit(self.dataset, self.workers, self.pin_memory, self.indices, torch.device(device))

    def moved(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = as_float32(x), as_float32(y)
        if self.device is None:
            return x, y
        return x.to(self.device, non_blocking=self.pin_memory), y.to(self.device, non_blocking=self.pin_memory)

    def loader(self, **kw) -> DataLoader:
        """A DataLoader over the split with data.loader's settings (and its own seed generator)."""
        workers = self.workers
        return DataLoader(self.source, num_workers=workers, pin_memory=self.pin_memory,
                          persistent_workers=workers > 0 and "batch_sampler" in kw,
                          generator=torch.Generator().manual_seed(0), **kw)

    def batches(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader(batch_size=min(size, EVAL_BATCH), shuffle=False):
            yield self.moved(x, y)

    def in_memory(self, n: Optional[int] = None) -> Split:
        """n examples (SAMPLE by default; all when fewer), drawn once with a fixed seed and read in
        index order, as tensors on the split's device."""
        n = min(SAMPLE if n is None else n, len(self))
        if n == 0:
            return Split(torch.empty(0), torch.empty(0, dtype=torch.long))
        g = torch.Generator().manual_seed(SAMPLE_SEED)
        picked = sorted(torch.randperm(len(self), generator=g)[:n].tolist())
        base = picked if self.indices is None else [self.indices[i] for i in picked]
        part = StreamSplit(self.dataset, self.workers, self.pin_memory, base, self.device)
        xs, ys = zip(*part.batches(EVAL_BATCH))
        return Split(torch.cat(xs), torch.cat(ys))

