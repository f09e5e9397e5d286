"""Data augmentation (LECTURES.md §1, regularization: random flips, random crops, colour jitter)
as batched tensor operations on the device where the batch already lies: no per-example Python,
no copy to the host. Training batches only; evaluation never sees it.

Each op is a small class registered by name in OPS, with its parameters (a `Params` model) beside
it: the spec's `data.augment` entries are validated against them, so an op is one class here.
Every random draw comes from the pipeline's own torch.Generator on the data's device, seeded from
the spec, so a run is reproducible and its generator state goes into the checkpoint for resume.
torchvision's transforms would do this, but torchvision does not import beside our torch build.

Digits (1x8x8) are not mirror-symmetric: a flipped 2 or 7 is no longer that digit, so hflip is
not label-preserving there; use crop / jitter for digits.

Each op says which inputs it takes (`inputs`): images (N, C, H, W) or sequences (N, C, L), the
latter for 1-D signals such as MNIST-1D (shift1d, scale1d, noise1d at the end of this file).
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from babysit.data.base import Split
from babysit.errors import DataError
from babysit.registry import Registry
from babysit.schema import Strict

SEED_STREAM = 0x5EED  # xor-ed into the spec's seed: a stream apart from the batch sampler's

OPS: Registry[type["Augment"]] = Registry("augment op")


def register(cls):
    """Register an op under the name its Params declare (`name: Literal["crop"]`)."""
    OPS.register(get_args(cls.Params.model_fields["name"].annotation)[0], cls)
    return cls


class OpParams(Strict):
    p: float = Field(0.5, ge=0, le=1, description="probability per example")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=g.device)


class Augment:
    """One op: `fit` sees the training inputs once (most ignore them); `apply` maps a batch
    (N, C, H, W), or (N, C, L) for sequence ops, to a batch of the same shape, each example drawn
    independently; `__call__` keeps it for the examples chosen with probability spec.p (the mask
    drawn after apply's own draws)."""

    Params = OpParams
    inputs = "images"  # or "sequences": a key of INPUT_DIMS

    def __init__(self, spec):
        self.spec = spec

    def fit(self, x_train: torch.Tensor) -> None:
        pass

    def chosen(self, n: int, g: torch.Generator, ndim: int = 4) -> torch.Tensor:
        """(N, 1, ...) mask of the examples this op changes (probability spec.p), ndim dimensions."""
        return (torch.rand(n, generator=g, device=g.device) < self.spec.p).view(n, *[1] * (ndim - 1))

    def apply(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        y = self.apply(x, g)
        return torch.where(self.chosen(len(x), g, x.ndim), y, x)


@register
class HFlip(Augment):
    """Mirror left-right. Not label-preserving for digits or text."""

    class Params(OpParams):
        name: Literal["hflip"]

    def apply(self, x, g):
        return x.flip(-1)


def crop_at(padded: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per-example (h, w) windows of a padded batch at offsets top[i], left[i], in one gather."""
    n = len(padded)
    rows = (top.view(n, 1) + torch.arange(h, device=padded.device)).view(n, 1, h, 1)
    cols = (left.view(n, 1) + torch.arange(w, device=padded.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=padded.device).view(n, 1, 1, 1)
    chan = torch.arange(padded.shape[1], device=padded.device).view(1, -1, 1, 1)
    return padded[batch, chan, rows, cols]


@register
class Crop(Augment):
    """Zero-pad by `padding` on every side, then cut a window of the original size at a random
    offset: the content shifts by up to `padding` pixels each way (the CIFAR recipe)."""

    class Params(OpParams):
        name: Literal["crop"]
        padding: int = Field(4, ge=1)
        p: float = Field(1.0, ge=0, le=1)

    def apply(self, x, g):
        n, _, h, w = x.shape
        p = self.spec.padding
        top = torch.randint(0, 2 * p + 1, (n,), generator=g, device=g.device)
        left = torch.randint(0, 2 * p + 1, (n,), generator=g, device=g.device)
        return crop_at(F.pad(x, (p, p, p, p)), top, left, h, w)


@register
class ResizedCrop(Augment):
    """A random box (area share in `scale`, aspect in `ratio`, log-uniform as Inception's),
    resized back to the full image by bilinear sampling: one affine grid for the whole batch."""

    class Params(OpParams):
        name: Literal["resized_crop"]
        scale: tuple[float, float] = (0.08, 1.0)  # share of the image's area (Inception / torchvision)
        ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio of the crop
        p: float = Field(1.0, ge=0, le=1)

        @model_validator(mode="after")
        def _check(self):
            if not 0 < self.scale[0] <= self.scale[1] <= 1:
                raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {list(self.scale)}")
            if not 0 < self.ratio[0] <= self.ratio[1]:
                raise ValueError(f"ratio must be (lo, hi) with 0 < lo <= hi, got {list(self.ratio)}")
            return self

    def apply(self, x, g):
        n = len(x)
        area = _uniform(n, *self.spec.scale, g)
        log_r = _uniform(n, math.log(self.spec.ratio[0]), math.log(self.spec.ratio[1]), g)
        bw = (area * log_r.exp()).sqrt().clamp(max=1.0)  # box width / image width
        bh = (area / log_r.exp()).sqrt().clamp(max=1.0)
        cx = (2 * torch.rand(n, generator=g, device=g.device) - 1) * (1 - bw)  # box centre in [-1, 1]
        cy = (2 * torch.rand(n, generator=g, device=g.device) - 1) * (1 - bh)
        zero = torch.zeros_like(bw)
        theta = torch.stack([torch.stack([bw, zero, cx], 1), torch.stack([zero, bh, cy], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@register
class Jitter(Augment):
    """Brightness: x * b, b ~ U[1 - brightness, 1 + brightness]; contrast: the image's deviation
    from its own mean scaled by c ~ U[1 - contrast, 1 + contrast] (torchvision's factors, no clamp:
    the inputs need not lie in [0, 1])."""

    class Params(OpParams):
        name: Literal["jitter"]
        brightness: float = Field(0.2, ge=0, lt=1, description="factor drawn from [1-b, 1+b]")
        contrast: float = Field(0.2, ge=0, lt=1, description="factor drawn from [1-c, 1+c]")
        p: float = Field(1.0, ge=0, le=1)

    def apply(self, x, g):
        n = len(x)
        b = _uniform(n, 1 - self.spec.brightness, 1 + self.spec.brightness, g).view(n, 1, 1, 1)
        c = _uniform(n, 1 - self.spec.contrast, 1 + self.spec.contrast, g).view(n, 1, 1, 1)
        y = x * b
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        return (y - mean) * c + mean


@register
class PCAColor(Augment):
    """AlexNet's colour jitter: add sum_i alpha_i * lambda_i * p_i to every pixel of an image,
    with (lambda_i, p_i) the eigenpairs of the training pixels' channel covariance and
    alpha_i ~ N(0, std). With one channel it is an intensity jitter: alpha * variance."""

    class Params(OpParams):
        name: Literal["pca_color"]
        std: float = Field(0.1, gt=0, description="AlexNet: alpha ~ N(0, 0.1)")
        p: float = Field(1.0, ge=0, le=1)

    def fit(self, x_train):
        c = x_train.shape[1]
        pixels = x_train.permute(0, 2, 3, 1).reshape(-1, c).double()
        vals, vecs = torch.linalg.eigh(torch.cov(pixels.T).reshape(c, c))
        self.vals, self.vecs = vals.clamp_min(0).to(x_train.dtype), vecs.to(x_train.dtype)

    def apply(self, x, g):
        n, c = x.shape[:2]
        alpha = torch.randn(n, c, generator=g, device=g.device) * self.spec.std
        shift = (alpha * self.vals.to(x.device)) @ self.vecs.to(x.device).T  # (N, C)
        return x + shift.view(n, c, 1, 1)


# -- sequences (N, C, L): MNIST-1D's own transformations, as a test of what the model must ignore.

PAD_MODES = {"zeros": "constant", "edge": "replicate", "circular": "circular"}  # shift1d mode -> F.pad's


@register
class Shift1d(Augment):
    """Translate each sequence by a whole number of positions in [-max_shift, max_shift]; what
    moves in at the end is zeros, the edge value repeated, or (circular) what moved out at the other
    end, as MNIST-1D's own translation rolls its signal. The sequence twin of crop."""

    inputs = "sequences"

    class Params(OpParams):
        name: Literal["shift1d"]
        max_shift: int = Field(4, ge=1, description="positions either way")
        mode: Literal["zeros", "edge", "circular"] = "zeros"
        p: float = Field(1.0, ge=0, le=1)

    def fit(self, x_train):
        if self.spec.mode == "circular" and self.spec.max_shift > x_train.shape[-1]:
            raise DataError(f"data.augment shift1d: max_shift {self.spec.max_shift} exceeds the sequence "
                            f"length {x_train.shape[-1]} that circular mode can roll by")

    def apply(self, x, g):
        n, c, length = x.shape
        s = self.spec.max_shift
        start = torch.randint(0, 2 * s + 1, (n,), generator=g, device=g.device)  # s = no shift
        padded = F.pad(x, (s, s), mode=PAD_MODES[self.spec.mode])
        at = (start.view(n, 1, 1) + torch.arange(length, device=x.device)).expand(n, c, length)
        return padded.gather(2, at)


@register
class Scale1d(Augment):
    """Stretch each sequence in time about its centre by t ~ U[1 - stretch, 1 + stretch]
    (linear interpolation, zeros beyond the ends) and its values by a ~ U[1 - amplitude,
    1 + amplitude]: MNIST-1D draws its digits at random lengths and amplitudes (+-20%)."""

    inputs = "sequences"

    class Params(OpParams):
        name: Literal["scale1d"]
        stretch: float = Field(0.1, ge=0, lt=1, description="time factor drawn from [1-s, 1+s]")
        amplitude: float = Field(0.0, ge=0, lt=1, description="value factor drawn from [1-a, 1+a]")
        p: float = Field(1.0, ge=0, le=1)

    def apply(self, x, g):
        n, c, length = x.shape
        t = _uniform(n, 1 - self.spec.stretch, 1 + self.spec.stretch, g).view(n, 1)
        a = _uniform(n, 1 - self.spec.amplitude, 1 + self.spec.amplitude, g).view(n, 1, 1)
        if self.spec.stretch == 0:  # no resampling: its rounding would blur the values a little
            return x * a
        where = torch.linspace(-1, 1, length, device=x.device).view(1, length) / t  # output reads input at u / t
        grid = torch.stack([where, torch.zeros_like(where)], -1).view(n, 1, length, 2).to(x.dtype)
        y = F.grid_sample(x.unsqueeze(2), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return y.squeeze(2) * a


@register
class Noise1d(Augment):
    """Add N(0, std^2) to every value, independently (MNIST-1D adds iid and correlated noise)."""

    inputs = "sequences"

    class Params(OpParams):
        name: Literal["noise1d"]
        std: float = Field(0.1, gt=0, description="in units of the inputs (MNIST-1D's are standardized)")
        p: float = Field(1.0, ge=0, le=1)

    def apply(self, x, g):
        return x + self.spec.std * torch.randn(x.shape, generator=g, device=g.device, dtype=x.dtype)


INPUT_DIMS = {"images": (4, "(N, C, H, W)"), "sequences": (3, "(N, C, L)")}  # an op's inputs: ndim, shape


def check_inputs(x: torch.Tensor, where: str, inputs: str = "images") -> None:
    ndim, shape = INPUT_DIMS[inputs]
    if not x.dtype.is_floating_point or x.ndim != ndim:
        raise DataError(f"{where} needs {inputs[:-1]} inputs {shape} of floats, got inputs of shape "
                        f"{tuple(x.shape)} and dtype {x.dtype}")


def check_images(x: torch.Tensor, where: str) -> None:
    check_inputs(x, where, "images")


class Pipeline:
    """The spec's ops in order, with one generator on the data's device."""

    def __init__(self, specs: list, x_train: torch.Tensor, seed: int):
        self.ops = [OPS[s.name](s) for s in specs]
        for op in self.ops:
            check_inputs(x_train, "data.augment", op.inputs)
            op.fit(x_train)
        self.gen = torch.Generator(device=x_train.device).manual_seed(seed ^ SEED_STREAM)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x, self.gen)
        return x

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])


class AugmentedSampler:
    """A BatchSampler whose batches pass through the pipeline; everything else is the sampler's."""

    def __init__(self, sampler, pipeline: Pipeline):
        self.sampler, self.pipeline = sampler, pipeline

    def __getattr__(self, name):
        return getattr(self.sampler, name)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.sampler.next()
        return self.pipeline(x), y

    def state_dict(self) -> dict:
        return {**self.sampler.state_dict(), "augment": self.pipeline.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self.pipeline.load_state_dict(state["augment"])


def augmented(sampler, data_spec, train: Split, seed: int):
    """The sampler itself when data.augment is empty, else it wrapped in the augmentation."""
    if not data_spec.augment:
        return sampler
    return AugmentedSampler(sampler, Pipeline(data_spec.augment, train.in_memory().x, seed))  # streamed: a sample
