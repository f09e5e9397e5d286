"""Data sets as in-memory tensors, split once, batched by index (no per-example Python per step)."""
from babysit.data import digits, files, mnist1d, names, python  # noqa: F401  (each registers its data.kind in LOADERS)
from babysit.data.base import DataError, Dataset, Split, build_data

__all__ = ["DataError", "Dataset", "Split", "build_data"]
