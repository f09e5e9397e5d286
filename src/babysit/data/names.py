"""The character-level names data set of MM3 (LECTURES.md §5).

The split follows the reference exactly (Python's random.seed(42), shuffle, 80/10/10) so that
our losses compare with the reference table: 182,625 / 22,655 / 22,866 examples at context 3.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from babysit.data.base import LOADERS, DataError, Dataset, Split, check_split, split_points

if TYPE_CHECKING:
    from babysit.spec import DataSpec

NAMES_FILE = Path(__file__).parent / "names.txt"
END = "."  # index 0: both the padding of the context and the end-of-name token


def read_words(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read names file {path}: {exc}") from None
    words = [w.strip() for w in text.splitlines() if w.strip()]
    if not words:
        raise DataError(f"names file {path} holds no names")
    bad = [w for w in words if END in w]
    if bad:
        raise DataError(f"names file {path}: '{END}' is reserved as the end token, found in {bad[0]!r}")
    return words


def build_vocab(words: list[str]) -> list[str]:
    return [END] + sorted(set("".join(words)))


def encode(words: list[str], stoi: dict[str, int], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for w in words:
        window = [0] * context
        for ch in w + END:
            ix = stoi[ch]
            xs.append(window)
            ys.append(ix)
            window = window[1:] + [ix]
    return torch.tensor(xs, dtype=torch.long).reshape(-1, context), torch.tensor(ys, dtype=torch.long)


@LOADERS.register("names")
def load(spec: DataSpec) -> Dataset:
    path = Path(spec.path) if spec.path else NAMES_FILE
    words = read_words(path)
    vocab = build_vocab(words)
    stoi = {ch: i for i, ch in enumerate(vocab)}
    # The reference seeds Python's global generator; a private one gives the same order
    # without resetting the caller's random state.
    random.Random(spec.split_seed).shuffle(words)
    n1, n2 = split_points(len(words), spec.split)
    parts = [words[:n1], words[n1:n2], words[n2:]]
    splits = []
    for name, part in zip(("train", "val", "test"), parts):
        x, y = encode(part, stoi, spec.context)
        check_split(name, x, y, len(vocab), str(path))
        splits.append(Split(x, y))
    return Dataset(*splits, num_classes=len(vocab), input_shape=(spec.context,), vocab=vocab,
                   source=str(path))
