"""The shared shape of every data set, its checks, and the dispatch from the spec."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import torch

from babysit.errors import DataError
from babysit.registry import Registry

if TYPE_CHECKING:  # data are built from the spec, which imports data.augment's ops
    from babysit.spec import DataSpec

LOADERS = Registry("data kind")  # data.kind -> load(DataSpec) -> Dataset; each loader module registers its own


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> "Split":
        return Split(self.x[index], self.y[index])

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    def in_memory(self, n: Optional[int] = None) -> "Split":
        """The examples as tensors: all of them, or the first n (the splits are shuffled once, so
        the first n are a fair sample). A streamed split (data/stream.py) gives a sample."""
        return self if n is None else self[:n]

    def batches(self, size: int):
        """(x, y) in order, `size` examples at a time."""
        for i in range(0, len(self), size):
            yield self.x[i:i + size], self.y[i:i + size]


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple  # one example's shape, e.g. (3,) for names context 3, (1, 8, 8) for digits
    vocab: Optional[list[str]] = None  # names: index -> character, '.' at 0
    source: str = ""
    extra: dict = field(default_factory=dict)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def streamed(self) -> bool:
        """The splits are read from torch Datasets in batches, not held in memory."""
        return not isinstance(self.train, Split)


def check_label_dtype(y: torch.Tensor, where: str) -> None:
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise DataError(f"{where}: labels must be integer class indices, got dtype {y.dtype}")
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be one index per example, got shape {tuple(y.shape)}")


def infer_num_classes(y: torch.Tensor, where: str) -> int:
    check_label_dtype(y, where)
    if y.numel() == 0:
        raise DataError(f"{where}: holds no labelled examples")
    return int(y.max()) + 1


def check_split(name: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, source: str) -> None:
    """Reject what would silently train wrong: mismatched lengths, bad labels, NaN/Inf inputs."""
    where = f"{source}, {name} split"
    if x.ndim < 2:
        raise DataError(f"{where}: inputs must hold one example per row and its features along the other "
                        f"axes, got shape {tuple(x.shape)}; for one feature per example reshape x to ({x.shape[0]}, 1)")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{where}: {x.shape[0]} inputs but {y.shape[0]} labels; they must match")
    if name in ("train", "val") and x.shape[0] == 0:
        raise DataError(f"{where}: is empty; give more data or change data.split")
    check_label_dtype(y, where)
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = int(((y < 0) | (y >= num_classes)).nonzero()[0])
            raise DataError(f"{where}: label {int(y[bad])} at index {bad} is out of range "
                            f"[0, {num_classes - 1}] for {num_classes} classes")
    if x.dtype.is_floating_point and x.numel():
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = int((~finite).reshape(x.shape[0], -1).any(1).nonzero()[0])
            count = int((~finite).sum())
            raise DataError(f"{where}: {count} NaN/Inf input values, the first in example {bad}; "
                            "clean or impute them before training")


def split_points(n: int, fractions) -> tuple[int, int]:
    """Where train ends and val ends, as the reference computes them: int(0.8 n), int(0.9 n)."""
    return int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)


def split_indices(n: int, fractions, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n1, n2 = split_points(n, fractions)
    return [perm[:n1], perm[n1:n2], perm[n2:]]


def dataset_from_arrays(x: torch.Tensor, y: torch.Tensor, spec: DataSpec, source: str,
                        num_classes: Optional[int] = None) -> Dataset:
    """Split one labelled array set by data.split / data.split_seed and check every part."""
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{source}: {x.shape[0]} inputs but {y.shape[0]} labels; they must match")
    if y.numel() == 0:
        raise DataError(f"{source}: holds no examples")
    if num_classes is None:
        num_classes = infer_num_classes(y, source)
    parts = [Split(x[i], y[i]) for i in split_indices(x.shape[0], spec.split, spec.split_seed)]
    for name, part in zip(("train", "val", "test"), parts):
        check_split(name, part.x, part.y, num_classes, source)
    return Dataset(*parts, num_classes=num_classes, input_shape=tuple(x.shape[1:]), source=source)


def build_data(spec: DataSpec) -> Dataset:
    data = LOADERS[spec.kind](spec)
    data = data if spec.classes is None else keep_classes(data, spec.classes)
    check_classes(data, ids_inferred=spec.kind == "arrays" and spec.num_classes is None and spec.classes is None)
    return data


def check_classes(data: Dataset, ids_inferred: bool) -> None:
    """A classifier needs two classes. When the number of classes comes from the largest label id,
    the ids must be mostly used: labels {0, 1000} are two classes, not a 1,001-way softmax.
    Streamed Datasets (read batch by batch) and real-valued targets (regression) are not checked."""
    y = None if data.streamed else data.train.y
    if y is None or y.is_floating_point() or not data.num_classes:
        return
    counts = torch.bincount(y, minlength=data.num_classes).tolist()
    present = {i: c for i, c in enumerate(counts) if c}
    shown = ", ".join(f"class {i}: {c}" for i, c in list(present.items())[:10]) + (", ..." if len(present) > 10 else "")
    if len(present) < 2:
        raise DataError(f"{data.source}: every training example has the same class ({shown}): a classifier "
                        "needs at least 2 classes; check the labels or the split")
    if ids_inferred and len(present) < data.num_classes / 2:
        raise DataError(f"{data.source}: the labels use {len(present)} class ids but reach {data.num_classes - 1}, "
                        f"so {data.num_classes - len(present)} of {data.num_classes} classes have no training "
                        f"example ({shown}); relabel them 0..{len(present) - 1}, keep them with data.classes: "
                        f"{list(present)[:10]}, or set data.num_classes")


def keep_classes(data: Dataset, classes: list[int]) -> Dataset:
    """data.classes: only these labels, relabelled by their position in the list (transfer
    learning: pre-train on some classes, fine-tune on others). Filtered after the split, so an
    example stays in the same split whichever classes are kept."""
    if data.streamed:
        raise DataError(f"data.classes filters tensors in memory; {data.source} gives torch Datasets: "
                        "keep the classes in your factory instead")
    bad = [c for c in classes if c >= data.num_classes]
    if bad:
        raise DataError(f"data.classes {bad} out of range for {data.source} with {data.num_classes} "
                        f"classes: valid labels are 0..{data.num_classes - 1}")
    lookup = torch.full((data.num_classes,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))

    def subset(part: Split) -> Split:
        new = lookup[part.y]
        keep = new >= 0
        return Split(part.x[keep], new[keep])

    train, val, test = (subset(p) for p in (data.train, data.val, data.test))
    for name, part in (("train", train), ("val", val)):
        if len(part) == 0:
            raise DataError(f"{data.source}, {name} split: no examples of data.classes {classes}")
    return Dataset(train, val, test, num_classes=len(classes), input_shape=data.input_shape,
                   vocab=data.vocab, source=f"{data.source} classes {classes}", extra=dict(data.extra))
