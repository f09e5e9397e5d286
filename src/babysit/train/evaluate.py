"""Whole-split evaluation in eval mode (BatchNorm uses its running statistics, dropout is off),
reduced on the device with a single host sync at the end."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Split

EVAL_CHUNK = 8192  # examples per forward pass; bounds memory on big splits


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, chunk: int = EVAL_CHUNK) -> dict:
    if len(split) == 0:
        return {}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, len(split), chunk):
        x, y = split.x[i:i + chunk].to(device), split.y[i:i + chunk].to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = len(split)
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n}
