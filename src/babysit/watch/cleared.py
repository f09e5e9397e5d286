"""Are the gradients cleared between optimizer steps? (the `grads-not-zeroed` rule reads this)

A loop written as the README shows (forward, zero_grad, backward, step) still holds the previous
step's gradients when its forward starts, so the question is asked at the moment backward first
accumulates into a parameter after an optimizer step: a tensor hook on a parameter runs before
the new gradient is added, and sees in `.grad` whatever is left. None or all zeros: cleared.

From each sampled step on, WINDOW optimizer steps are observed; then the hooks come off. An
optimizer step hook tells optimizer steps from the micro-batches of gradient accumulation (its
first backward after a step is the one asked); without an optimizer, each watch.step is one.
The answers stay on the device (one bool per observed step) until a flush fetches them.
"""
from __future__ import annotations

from typing import Optional

import torch

WINDOW = 3


class ClearCheck:
    def __init__(self, params: list[torch.Tensor], optimizer: Optional[torch.optim.Optimizer]):
        self.params, self.optimizer = params, optimizer
        self.pending: list[tuple[int, torch.Tensor]] = []  # (step, gradients were still there)
        self._handles: list = []
        self._left, self._step, self._expect = 0, 0, False

    def start(self, step: int) -> None:
        """Observe from `step` (the next to run) for WINDOW optimizer steps."""
        if not self.params:
            return
        if not self._handles:
            # a parameter frozen since the Watch was made (a fine-tune's body) takes no hook
            self._handles = [p.register_hook(self._on_grad(p)) for p in self.params if p.requires_grad]
            if self.optimizer is not None:
                self._handles.append(self.optimizer.register_step_post_hook(self._on_step))
        self._left, self._step, self._expect = WINDOW, step, True

    def tick(self, step: int) -> None:
        """watch.step(`step`) ran: the next backward belongs to step + 1."""
        if not self._handles:
            return
        if self.optimizer is None:
            self._expect = True
        self._step = step + 1
        self._left -= 1
        if self._left <= 0:
            self.stop()

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _on_step(self, optimizer, args, kwargs) -> None:
        self._expect = True

    def _on_grad(self, p: torch.Tensor):
        def hook(grad):
            if self._expect:
                self._expect = False
                kept = p.grad.ne(0).any() if p.grad is not None else torch.zeros((), dtype=torch.bool,
                                                                                  device=grad.device)
                self.pending.append((self._step, kept))
        return hook

    def fetch(self) -> list[list]:
        """[step, gradients were still there] of every observation since the last fetch."""
        if not self.pending:
            return []
        kept = torch.stack([k.to(self.pending[0][1].device) for _, k in self.pending]).cpu().tolist()
        out = [[step, bool(k)] for (step, _), k in zip(self.pending, kept)]
        self.pending = []
        return out
