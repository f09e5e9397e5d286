"""Sampling names from a trained character model, one character at a time (MM3)."""
from __future__ import annotations

import torch
from torch import nn

MAX_LEN = 50  # a stop for models that never emit the end token


@torch.no_grad()
def sample_names(model: nn.Module, vocab: list[str], context: int, n: int = 20, seed: int = 0) -> list[str]:
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    # All n names advance together: one forward pass per character position, not per name.
    window = torch.zeros((n, context), dtype=torch.long, device=device)
    out = torch.zeros((n, MAX_LEN), dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for t in range(MAX_LEN):
        probs = torch.softmax(model(window), dim=1)
        ix = torch.multinomial(probs, 1, generator=g).squeeze(1)
        ix = torch.where(done, torch.zeros_like(ix), ix)
        out[:, t] = ix
        done |= ix == 0
        window = torch.cat([window[:, 1:], ix[:, None]], dim=1)
        if bool(done.all()):
            break
    names = []
    for row in out.tolist():
        chars = []
        for i in row:
            if i == 0:
                break
            chars.append(vocab[i])
        names.append("".join(chars))
    return names
