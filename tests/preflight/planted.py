"""Planted bugs shared by the preflight tests (imported by name: pytest puts this folder on the path)."""
import torch


class WrongTanh(torch.autograd.Function):
    """tanh with a planted bug: its backward forgets the square (1 - y instead of 1 - y^2)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y)
