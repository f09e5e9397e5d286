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
from babysit.train.evaluate import EVAL_CHUNK

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


VIEWS: dict[str, Callable[[torch.Tensor, int], list[torch.Tensor]]] = {
    "flip": flip_views, "tencrop": tencrop_views, "fivecrop": fivecrop_views,
}


@torch.no_grad()
def tta_probs(model: nn.Module, x: torch.Tensor, mode: str, padding: int | None = None) -> torch.Tensor:
    """Softmax probabilities averaged over the views of `mode` (model in its current mode)."""
    if mode not in VIEWS:
        raise ValueError(f"tta must be one of {', '.join(VIEWS)}, got {mode!r}")
    check_images(x, f"--tta {mode}")
    views = VIEWS[mode](x, default_padding(x) if padding is None else padding)
    return torch.stack([F.softmax(model(v), dim=1) for v in views]).mean(0)


@torch.no_grad()
def evaluate_tta(model: nn.Module, split: Split, mode: str, padding: int | None = None,
                 chunk: int = EVAL_CHUNK) -> dict:
    """Loss (NLL of the averaged probabilities) and accuracy of `split` under test-time augmentation."""
    if len(split) == 0:
        return {}
    check_images(split.x, f"--tta {mode}")  # named for the whole split, before any chunk
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, len(split), chunk):
        x, y = split.x[i:i + chunk].to(device), split.y[i:i + chunk].to(device)
        probs = tta_probs(model, x, mode, padding)
        loss_sum += F.nll_loss(probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), y, reduction="sum")
        correct += (probs.argmax(1) == y).sum()
    model.train(was_training)
    return {"loss": loss_sum.item() / len(split), "acc": correct.item() / len(split)}
