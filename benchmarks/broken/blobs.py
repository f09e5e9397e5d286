"""The suite's synthetic data set: 20 overlapping Gaussian classes in 32 dimensions (a task with a
loss well above 0, so val losses compare at 5%), written as an arrays .npz the specs can load.
`offset`/`spread` give the un-centred, unevenly scaled variant."""
from pathlib import Path

import numpy as np

CLASSES, DIM, EXAMPLES, NOISE = 20, 32, 20000, 2.5


def write_blobs(path: Path, offset: float = 0.0, spread: float = 1.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES, DIM))
    y = rng.integers(0, CLASSES, EXAMPLES)
    x = centers[y] + NOISE * rng.normal(size=(EXAMPLES, DIM))
    # un-centred variant: every feature shifted, feature scales spread over `spread` x
    x = (x * np.logspace(0, np.log10(spread), DIM) + offset).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y.astype(np.int64))
    return path
