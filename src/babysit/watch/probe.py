"""What Watch attaches around one sampled training forward, and takes off right after.

Global pre- and post-forward module hooks (two registrations, whatever the model's size): they
keep the stack of running modules (so that a function knows whose forward called it), record
activation modules' outputs, and note the order in which layers run. During the model's own (root) forward, a TorchFunctionMode also records the
activations called as functions (F.relu, torch.tanh, x.sigmoid(), F.softmax, ...; the table's
`functions`), named after the module whose forward called them: `block.relu#0`. Outside a sampled
step nothing of this exists, so unsampled steps cost nothing.

Naming: an activation module called once is recorded under its name; a reused one again at each
call, as `act#1`, `act#2`. Only the first training forward after arming is recorded (an evaluation
pass or a second micro-batch is not). When a loop never calls the model itself but its children,
each activation module is recorded at its first call and functions are not seen.

Every recorded output's autograd node is tagged (metadata TAG: the layer's name and the output's
shape), so the loss-graph reader can name the layer that feeds a loss.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from babysit.activations import FUNCTION_KINDS, kind_of
from babysit.watch import stats as S

TAG = "babysit"
# Layers that normalize their own input per feature: the data's centring is theirs, not the data's.
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def has_weights(m: nn.Module) -> bool:
    """A layer with a weight matrix or kernel of its own (Linear, Conv, RNN, attention's
    in_proj_weight). An embedding is a lookup table, not weights that feed an activation; a raw
    matrix held by a container (a positional embedding, say) is not a layer either."""
    if isinstance(m, nn.Embedding):
        return False
    leaf = next(m.children(), None) is None
    return any(p.ndim >= 2 and (leaf or "weight" in n) for n, p in m.named_parameters(recurse=False))


def input_axis(m: nn.Module) -> int:
    """The feature axis of a layer's input: the channel of a convolution, the last axis else."""
    return 1 if isinstance(m, nn.modules.conv._ConvNd) else -1


class _FunctionMode(TorchFunctionMode):
    def __init__(self, probe: "Probe"):
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kind = FUNCTION_KINDS.get(func)
        if kind is not None:
            self.probe.function_called(kind, out)
        return out


def describe(model: nn.Module) -> list[tuple]:
    """(name, module, activation kind or None, has weights, has parameters of its own) for every
    module of the model, the root ("") first: what Probe hooks, worked out once per Watch."""
    return [(name, m, kind_of(m), has_weights(m), next(m.parameters(recurse=False), None) is not None)
            for name, m in model.named_modules()]


class Probe:
    """One sampled forward's hooks. modules: describe(model)."""

    def __init__(self, modules: list[tuple], record_order: bool, functions: bool = True):
        """functions: run the function mode (Watch drops it once a first forward called none)."""
        self.record_order, self.functions = record_order, functions
        self.functions_seen = False
        self.info = {id(m): (name, kind, weights, own) for name, m, kind, weights, own in modules}
        self.activations = {name for name, _, kind, _, _ in modules if kind is not None}
        self.captured: dict[str, tuple[str, torch.Tensor]] = {}  # name -> (kind, output copy), call order
        self.grads: dict[str, torch.Tensor] = {}
        self.order: list[list[str]] = []  # [name, kind | 'weights'] in execution order
        self.inputs: Optional[torch.Tensor] = None  # stats.input_stats of the model's input
        self.batch_size: Optional[int] = None
        self._input_seen = False
        self._stack: list[str] = []
        self._calls: dict[str, int] = {}
        self._root_seen, self._in_root, self._done = False, False, False
        self.ran = False  # some module of the model ran a recorded forward
        self._mode: Optional[_FunctionMode] = None
        self._handles: list = []

    # -- attach / detach ---------------------------------------------------------------------
    def attach(self) -> None:
        """Two global module hooks (every module's forward runs them; those of other models are
        passed over): two registrations per sample, however many modules the model has."""
        self._handles = [nn.modules.module.register_module_forward_pre_hook(self._pre),
                         nn.modules.module.register_module_forward_hook(self._post)]

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._leave_root()

    # -- hooks -------------------------------------------------------------------------------
    def _open(self, module: nn.Module) -> bool:
        """Whether this call is recorded: a training forward with gradients, the first root forward
        (or, when the root is never called, anywhere)."""
        if self._done or not module.training or not torch.is_grad_enabled():
            return False
        return self._in_root or not self._root_seen

    @torch.compiler.disable  # run as written, also around a compiled forward
    def _pre(self, module: nn.Module, args) -> None:
        info = self.info.get(id(module))
        if info is None:
            return
        name, _, weights, own = info
        if name == "":
            if self._done or self._in_root or not self._open(module):
                return
            self._root_seen = self._in_root = True
            if self.functions:
                self._mode = _FunctionMode(self)
                self._mode.__enter__()
        if not self._open(module):
            return
        self.ran = True
        self._stack.append(name)
        if weights and self.record_order and [name, "weights"] not in self.order:
            self.order.append([name, "weights"])
        if own and not self._input_seen:
            self._input_seen = True  # the first layer with parameters to run reads the input
            x = args[0] if args else None
            if isinstance(x, torch.Tensor) and x.is_floating_point() and 2 <= x.ndim <= 5 \
                    and not isinstance(module, NORMS):
                self.inputs = S.input_stats(x, input_axis(module))

    @torch.compiler.disable
    def _post(self, module: nn.Module, args, output) -> None:
        info = self.info.get(id(module))
        if info is None:
            return
        name, kind, _, _ = info
        if self._stack and self._stack[-1] == name:
            self._stack.pop()
            if kind is not None:
                calls = self._calls.get(name, 0)
                if calls == 0 or self._in_root:  # outside the root forward: first call only
                    self._calls[name] = calls + 1
                    self._record(name if calls == 0 else f"{name}#{calls}", kind, output)
        if name == "" and self._in_root:
            self._leave_root()
            self._done = True

    def _leave_root(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        self._in_root = False

    @torch.compiler.disable  # recorded as written, also inside a compiled forward
    def function_called(self, kind: str, out) -> None:
        """An activation function ran inside the root forward; a module of the table computing it
        (nn.ReLU calls F.relu) is recorded by its own hook instead."""
        owner = self._stack[-1] if self._stack else ""
        if owner in self.activations:
            return
        key = f"{owner}.{kind}" if owner else kind
        self.functions_seen = True
        calls = self._calls.get(key, 0)
        self._calls[key] = calls + 1
        self._record(f"{key}#{calls}", kind, out)

    def _record(self, name: str, kind: str, out) -> None:
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return
        # A copy: a later in-place op (ReLU(inplace=True), say) may overwrite the output.
        self.captured[name] = (kind, out.detach().clone())
        if self.batch_size is None and out.ndim:
            self.batch_size = out.shape[0]
        if out.requires_grad:
            out.register_hook(lambda g: self.grads.__setitem__(name, g.detach()))
        if out.grad_fn is not None:
            out.grad_fn.metadata[TAG] = {"layer": name, "shape": list(out.shape)}
        if self.record_order:
            self.order.append([name, kind])
