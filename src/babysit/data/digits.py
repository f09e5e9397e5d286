"""The 8x8 handwritten digits (UCI optdigits test set, 1,797 images, pixels 0..16).

Shipped in the package (DIGITS.LICENSE), so nothing is downloaded. Pixels are scaled to
[0, 1]; zero-centring is the spec's data.preprocess, fit on the train split only.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from babysit.data.base import LOADERS, Dataset, dataset_from_arrays

if TYPE_CHECKING:
    from babysit.spec import DataSpec

DIGITS_FILE = Path(__file__).parent / "digits.csv.gz"


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    with gzip.open(DIGITS_FILE, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(table[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(table[:, 64].astype(np.int64))
    return x, y


@LOADERS.register("digits")
def load(spec: DataSpec) -> Dataset:
    x, y = read_digits()
    return dataset_from_arrays(x, y, spec, "digits", num_classes=10)
