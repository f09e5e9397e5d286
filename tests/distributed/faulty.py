"""A user's network that goes wrong on one rank of a DDP run, at a chosen training step: its
output turns NaN, or its forward raises. On other ranks, and on one process, it is a plain MLP."""
import torch.distributed as dist
from torch import nn


class Faulty(nn.Module):
    def __init__(self, features: int, num_classes: int, fault: str, rank: int, at_step: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(features, 32), nn.Tanh(), nn.Linear(32, num_classes))
        self.fault, self.rank, self.at_step, self.calls = fault, rank, at_step, 0

    def forward(self, x):
        out = self.net(x)
        if self.training and dist.is_initialized() and dist.get_rank() == self.rank:
            self.calls += 1
            if self.calls >= self.at_step:
                if self.fault == "raise":
                    raise RuntimeError(f"planted fault on rank {self.rank} at step {self.calls}")
                out = out * float("nan")
        return out


def build(num_classes: int, input_shape: tuple, fault: str, rank: int = 1, at_step: int = 30) -> nn.Module:
    features = 1
    for d in input_shape:
        features *= d
    return Faulty(features, num_classes, fault, rank, at_step)
