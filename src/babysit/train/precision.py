"""train.precision: the forward and loss under autocast (bf16 or fp16), the weights, optimizer
state and Watch's statistics in float32 (Watch reduces in float32/float64 whatever it is given).
fp16's narrow range needs a gradient scaler (the loss scaled up before backward, the gradients
unscaled before clipping and the step, a step with inf/NaN gradients skipped); bf16 has fp32's
range and needs none. CUDA is where this pays; bf16 autocast runs on the CPU too."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, name: str, device: torch.device):
        self.name, self.device, self.dtype = name, device, DTYPES[name]
        self.scaler: Optional[torch.amp.GradScaler] = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self, cache_enabled: bool = True):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=cache_enabled)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, params, grad_clip: Optional[float]) -> None:
        """Clip (on the true gradients) and step; with the scaler, its unscale, skip and update."""
        if self.scaler is None:
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            return
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> Optional[dict]:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: Optional[dict]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
