"""Test-time augmentation (LECTURES.md §1, regularization: "test-time 10-crop"): the model sees
several views of each test image and the softmax probabilities are averaged. Eval mode, on the
model's device, reduced on the device with one host sync at the end, like `evaluate`.

Views: `flip` = the image and its mirror; `tencrop` = four corner crops and the centre crop, plus
their mirrors; `fivecrop` = the same without mirrors. Our models take one input size, so the crops are windows of the original size cut
from the image zero-padded by `padding` (the centre crop is the image itself): the test-time twin
of the `crop` augmentation. Mirrors assume left-right symmetric classes: for digits use fivecrop.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Split
from babysit.data.augment import check_images, crop_at
from babysit.registry import Registry
from babysit.losses import CROSS_ENTROPY, Loss
from babysit.train.evaluate import Views, evaluate

# AlexNet cuts 224 of 256: a corner crop lies 16 px, 1/16 of the side, from the centre one.
TENCROP_SHIFT = 1 / 16


def default_padding(x: torch.Tensor) -> int:
    return max(1, round(x.shape[-1] * TENCROP_SHIFT))


def flip_views(x: torch.Tensor, padding: int) -> list[torch.Tensor]:
    return [x, x.flip(-1)]


def fivecrop_views(x: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """The centre and the four corners: tencrop without the mirrors, for classes that are not
    left-right symmetric (digits, text)."""
    n, _, h, w = x.shape
    p = padding
    padded = F.pad(x, (p, p, p, p))
    crops = []
    for top, left in ((p, p), (0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p)):
        at = torch.full((n,), top, device=x.device), torch.full((n,), left, device=x.device)
        crops.append(crop_at(padded, *at, h, w))
    return crops


def tencrop_views(x: torch.Tensor, padding: int) -> list[torch.Tensor]:
    crops = fivecrop_views(x, padding)
    return crops + [c.flip(-1) for c in crops]


VIEWS: Registry[Callable[[torch.Tensor, int], list[torch.Tensor]]] = Registry("tta mode")
VIEWS.register("flip", flip_views)
VIEWS.register("tencrop", tencrop_views)
VIEWS.register("fivecrop", fivecrop_views)


def tta_views(mode: str, padding: int | None = None) -> Views:
    """The views of `mode` as a function of a batch (padding: default_padding of the batch)."""
    fn = VIEWS[mode]

    def views(x: torch.Tensor) -> list[torch.Tensor]:
        check_images(x, f"--tta {mode}")
        return fn(x, default_padding(x) if padding is None else padding)
    return views


def evaluate_tta(model: nn.Module, split: Split, mode: str, padding: int | None = None,
                 loss: Loss = CROSS_ENTROPY) -> dict:
    """Loss (NLL of the averaged probabilities) and accuracy of `split` under test-time augmentation."""
    views = tta_views(mode, padding)  # an unknown mode fails here, before any forward pass
    check_images(split.in_memory(1).x, f"--tta {mode}")  # named for the whole split, before any chunk
    return evaluate(model, split, views, loss=loss)
