"""MNIST-1D (Greydanus, "Scaling down deep learning", 2020): ten 1-D digit templates, padded,
translated, scaled, sheared and noised into sequences of length 40. Built to separate models
where MNIST cannot: the paper reports logistic regression 32%, MLP 68%, CNN 94%, GRU 91%.

Generated offline by the `mnist1d` package (`make_dataset(get_dataset_args())`, about 1.5 s);
nothing is downloaded (the package's `get_dataset` would fetch a pickle, so it is never called).
The package splits its sequences 80/20 into train and test; the test part is kept as `test`, and
val is cut from the train part by data.split's train:val ratio with data.split_seed, so the
paper's test set is never seen while choosing anything. Sequences come out standardized (the
package's own mean 0, std 1), shaped (1, 40): one channel, 40 positions, as Conv1d reads them.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from babysit.data.base import LOADERS, Dataset, Split, check_split
from babysit.errors import DataError

if TYPE_CHECKING:
    from babysit.spec import DataSpec

NUM_CLASSES = 10
PAPER_SAMPLES = 5000  # get_dataset_args(): 4,000 train and 1,000 test sequences
PAPER_SEED = 42  # get_dataset_args()'s seed: the paper's data set


@contextmanager
def _global_rng_kept():
    """make_dataset seeds Python's and NumPy's global generators; leave them as they were."""
    py, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def generate(num_samples: int = PAPER_SAMPLES, seed: int = PAPER_SEED, shuffle_seq: bool = False) -> dict:
    """The package's arrays: x (train, 40), y, x_test, y_test."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError("data.kind 'mnist1d' needs the mnist1d package: pip install mnist1d") from None
    args = get_dataset_args()
    args.num_samples, args.seed, args.shuffle_seq = num_samples, seed, shuffle_seq
    with _global_rng_kept():
        return make_dataset(args)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


@LOADERS.register("mnist1d")
def load(spec: DataSpec) -> Dataset:
    n = PAPER_SAMPLES if spec.num_samples is None else spec.num_samples
    seed = PAPER_SEED if spec.seed is None else spec.seed
    raw = generate(n, seed, spec.shuffle_seq)
    x, y = _tensors(raw["x"], raw["y"])
    x_test, y_test = _tensors(raw["x_test"], raw["y_test"])
    # val from the training part: train:val = split[0]:split[1] (split[2] is the package's test part)
    g = torch.Generator().manual_seed(spec.split_seed)
    perm = torch.randperm(len(x), generator=g)
    n_train = round(len(x) * spec.split[0] / (spec.split[0] + spec.split[1]))
    source = f"mnist1d ({n} sequences, seed {seed}{', shuffled positions' if spec.shuffle_seq else ''})"
    if n_train in (0, len(x)):
        raise DataError(f"{source}: data.split {list(spec.split)} leaves no train or no val sequences "
                        f"out of {len(x)}; give data.num_samples more or change data.split")
    parts = [Split(x[perm[:n_train]], y[perm[:n_train]]), Split(x[perm[n_train:]], y[perm[n_train:]]),
             Split(x_test, y_test)]
    for name, part in zip(("train", "val", "test"), parts):
        check_split(name, part.x, part.y, NUM_CLASSES, source)
    return Dataset(*parts, num_classes=NUM_CLASSES, input_shape=tuple(x.shape[1:]), source=source)
