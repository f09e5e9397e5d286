"""Preprocessing as the model's first layer: statistics fit on the train split live in buffers,
so they travel inside every checkpoint and eval / inference apply them without being told."""
from __future__ import annotations

import torch
from torch import nn


class Preprocess(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, kind: str):
        super().__init__()
        self.kind = kind
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    @classmethod
    def fit(cls, x_train: torch.Tensor, kind: str, eps: float = 1e-8) -> "Preprocess":
        """center: subtract the per-feature mean; standardize: also divide by the per-feature std.
        Constant features (std 0, e.g. digits' always-blank border pixels) are left unscaled."""
        x = x_train.float()
        mean = x.mean(0, keepdim=True)
        std = x.std(0, keepdim=True) if kind == "standardize" else torch.ones_like(mean)
        std = torch.where(std > eps, std, torch.ones_like(std))
        return cls(mean[0], std[0], kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return self.kind
