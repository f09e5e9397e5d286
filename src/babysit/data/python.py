"""data.kind python: the user's own data. data.factory(**data.args) returns the splits:

    (x_train, y_train, x_val, y_val[, x_test, y_test])   tensors or numpy arrays, held in memory
    (train, val[, test])                                  torch Datasets of (x, y) pairs, streamed

Integer 1-D targets are class labels (checked against the number of classes); real-valued ones
are targets for a regression loss (loss: mse, bce). Anything else is refused with what it got.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from babysit import factories
from babysit.data.base import LOADERS, DataError, Dataset, Split, check_split
from babysit.data.stream import StreamSplit, as_float32

NAMES = ("train", "val", "test")
EXPECTED = ("(x_train, y_train, x_val, y_val[, x_test, y_test]) tensors or arrays, or (train, val[, test]) "
            "torch Datasets of (x, y) pairs")


def _tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            raise DataError(f"{what}: a numpy array of Python objects; give numbers")
        t = torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise DataError(f"{what}: expected a tensor or numpy array, got {type(value).__name__}")
    if t.dtype == torch.bool:
        t = t.long()
    return as_float32(t.long() if t.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8) and t.ndim == 1
                      else t)


def _classes(y: torch.Tensor) -> Optional[int]:
    """C for integer class labels (1 + the largest train label), None for real-valued targets."""
    if y.dtype.is_floating_point:
        return None
    if y.ndim != 1:
        raise DataError(f"integer targets of shape {tuple(y.shape)}: class labels are one per example "
                        "(shape (N,)); for several real-valued targets per example give floats")
    return int(y.max()) + 1 if y.numel() else None


def _check_targets(name: str, y: torch.Tensor, num_classes: Optional[int], source: str, x: torch.Tensor) -> None:
    if num_classes is not None:
        check_split(name, x, y, num_classes, source)
        return
    where = f"{source}, {name} split"
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{where}: {x.shape[0]} inputs but {y.shape[0]} targets; they must match")
    if name in ("train", "val") and x.shape[0] == 0:
        raise DataError(f"{where}: is empty")
    if y.numel() and not bool(torch.isfinite(y).all()):
        raise DataError(f"{where}: {int((~torch.isfinite(y)).sum())} NaN/Inf target values")
    if x.dtype.is_floating_point and x.numel() and not bool(torch.isfinite(x).all()):
        raise DataError(f"{where}: NaN/Inf input values; clean or impute them before training")


def _from_tensors(parts: tuple, source: str) -> Dataset:
    pairs = [(_tensor(parts[i], f"{source}: x_{NAMES[i // 2]}"), _tensor(parts[i + 1], f"{source}: y_{NAMES[i // 2]}"))
             for i in range(0, len(parts), 2)]
    if len(pairs) == 2:  # no test split
        x, y = pairs[1]
        pairs.append((x[:0], y[:0]))
    y_train = pairs[0][1]
    if y_train.numel() == 0:
        raise DataError(f"{source}, train split: is empty")
    num_classes = _classes(y_train)  # from train: a val or test label beyond it is an error
    for name, (x, y) in zip(NAMES, pairs):
        if y.dtype.is_floating_point != y_train.dtype.is_floating_point:
            raise DataError(f"{source}, {name} split: targets are {y.dtype}, train's are {y_train.dtype}; "
                            "give class labels (integers) or real-valued targets (floats) in every split")
        _check_targets(name, y, num_classes, source, x)
    width = 1 if y_train.ndim == 1 else int(np.prod(y_train.shape[1:]))
    return Dataset(*(Split(x, y) for x, y in pairs), num_classes=num_classes or width,
                   input_shape=tuple(pairs[0][0].shape[1:]), source=source)


def _is_dataset(value) -> bool:
    return isinstance(value, torch.utils.data.Dataset) and hasattr(value, "__len__")


def _stream_classes(train, sample: Split) -> Optional[int]:
    """C of a Dataset: its num_classes or classes (torchvision's), else 1 + the largest label of
    its `targets`, else of the sample (a label beyond it fails the first batch that holds it)."""
    for attr, count in (("num_classes", int), ("classes", len)):
        if getattr(train, attr, None) is not None:
            return count(getattr(train, attr))
    targets = getattr(train, "targets", None)
    if targets is not None:
        return _classes(torch.as_tensor(targets))
    return _classes(sample.y)


def _from_datasets(parts: tuple, spec, source: str) -> Dataset:
    splits = [StreamSplit(p, spec.loader.workers, spec.loader.pin_memory) for p in parts]
    if len(splits) == 2:
        splits.append(splits[1][:0])
    if len(splits[0]) == 0 or len(splits[1]) == 0:
        raise DataError(f"{source}: the {'train' if len(splits[0]) == 0 else 'val'} Dataset is empty")
    samples = []
    for name, split in zip(NAMES, splits):
        try:
            samples.append(split.in_memory())
        except (ValueError, TypeError, RuntimeError) as exc:  # unpacking or collating the items failed
            raise DataError(f"{source}, {name} Dataset: items must be (x, y) pairs of tensors, arrays or "
                            f"numbers of one shape ({type(exc).__name__}: {exc})") from None
    num_classes = _stream_classes(parts[0], samples[0])
    for name, part in zip(NAMES, samples):  # checked on the sample each split gives
        if len(part):
            _check_targets(name, part.y, num_classes, f"{source} (a sample of {len(part)})", part.x)
    y = samples[0].y
    width = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    return Dataset(*splits, num_classes=num_classes or width, input_shape=tuple(samples[0].x.shape[1:]),
                   source=source)


@LOADERS.register("python")
def load_python(spec) -> Dataset:
    fn = factories.load(spec.factory, "data.factory")
    source = f"data.factory {spec.factory}"
    parts = factories.call(fn, spec.args, "data.args")
    if not isinstance(parts, (tuple, list)):
        raise DataError(f"{source} returned {type(parts).__name__}; it must return {EXPECTED}")
    if len(parts) in (2, 3) and all(_is_dataset(p) for p in parts):
        return _from_datasets(tuple(parts), spec, source)
    if len(parts) in (4, 6) and not any(_is_dataset(p) for p in parts):
        if spec.loader != type(spec.loader)():
            raise DataError(f"data.loader is for factories that return torch Datasets; {source} returned "
                            "tensors, which are batched in memory: remove data.loader")
        return _from_tensors(tuple(parts), source)
    got = ", ".join(type(p).__name__ for p in parts)
    raise DataError(f"{source} returned {len(parts)} items ({got}); it must return {EXPECTED}")
