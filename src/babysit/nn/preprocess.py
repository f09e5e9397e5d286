"""Preprocessing as the model's first layer: statistics fit on the train split live in buffers,
so they travel inside every checkpoint and eval / inference apply them without being told.

LECTURES.md §1 (preprocessing): zero-centre and divide by the std in general; for images
zero-centre only, by the mean image or the per-channel mean; PCA and whitening exist but are
uncommon for images. Each kind is a small fit function registered by name in FITS; a fit returns
(mean, std, proj, out_shape) and one forward serves them all:
    elementwise kinds: (x - mean) / std, mean and std broadcast over an example;
    linear kinds:      (flatten(x) - mean) @ proj, reshaped to out_shape.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from babysit.errors import DataError
from babysit.registry import Registry

CONSTANT_STD = 1e-8  # a feature with a smaller train std is constant (digits' blank border): not scaled
DEFAULT_WHITEN_EPS = 1e-5  # added to each eigenvalue before 1/sqrt; CS231n notes (L6): S + 1e-5
# PCA / whitening build a D x D covariance in float64: 8192 features is 512 MB and an eigh of
# tens of seconds on a CPU; 32x32x3 images (3,072) fit, 224x224x3 (150,528) would need 180 GB.
MAX_EIGEN_FEATURES = 8192

Fitted = tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], tuple]
FITS: Registry[Callable[..., Fitted]] = Registry("data.preprocess kind")


def register(name: str):
    return FITS.register(name)


def _image_shape(x: torch.Tensor, kind: str) -> tuple:
    if x.ndim != 4:
        raise DataError(f"data.preprocess '{kind}' needs image inputs (C, H, W), got examples of "
                         f"shape {tuple(x.shape[1:])}; use center or standardize for flat features")
    return tuple(x.shape[1:])


@register("center")
def _center(x, **_) -> Fitted:
    mean = x.mean(0)
    return mean, torch.ones_like(mean), None, tuple(x.shape[1:])


@register("mean-image")
def _mean_image(x, **_) -> Fitted:
    _image_shape(x, "mean-image")  # the same arithmetic as center, named for images
    return _center(x)


@register("channel-mean")
def _channel_mean(x, **_) -> Fitted:
    c = _image_shape(x, "channel-mean")[0]
    mean = x.mean(dim=(0, 2, 3)).reshape(c, 1, 1)  # one number per channel ("3 numbers")
    return mean, torch.ones_like(mean), None, tuple(x.shape[1:])


@register("standardize")
def _standardize(x, **_) -> Fitted:
    mean, std = x.mean(0), x.std(0)
    return mean, torch.where(std > CONSTANT_STD, std, torch.ones_like(std)), None, tuple(x.shape[1:])


def _eigen(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean (D,), eigenvalues (D,) in decreasing order and eigenvectors (columns) of the train
    covariance, in float64: whitening divides by small eigenvalues, float32 would be noise there."""
    flat = x.reshape(len(x), -1).double()
    if flat.shape[1] > MAX_EIGEN_FEATURES:
        raise DataError(f"PCA / whitening needs the covariance of all {flat.shape[1]} input features, "
                         f"above the {MAX_EIGEN_FEATURES} this allows; make the images smaller "
                         "(data.image_size) or use data.preprocess center, channel-mean or standardize")
    if len(flat) < 2:
        raise DataError("PCA / whitening needs at least 2 training examples")
    mean = flat.mean(0)
    cov = (flat - mean).T @ (flat - mean) / (len(flat) - 1)
    vals, vecs = torch.linalg.eigh(cov)
    return mean, vals.flip(0).clamp_min(0.0), vecs.flip(1)


def _components(x: torch.Tensor, k: Optional[int], kind: str) -> int:
    d = math.prod(x.shape[1:])
    if k is None or not 1 <= k <= d:
        raise DataError(f"data.pca_components must lie in 1..{d} (the input has {d} features) "
                         f"for data.preprocess '{kind}', got {k}")
    return k


@register("pca")
def _pca(x, k=None, **_) -> Fitted:
    k = _components(x, k, "pca")
    mean, _vals, vecs = _eigen(x)
    return mean, torch.ones(()), vecs[:, :k], (k,)


@register("pca-whiten")
def _pca_whiten(x, k=None, eps=DEFAULT_WHITEN_EPS, **_) -> Fitted:
    k = _components(x, k, "pca-whiten")
    mean, vals, vecs = _eigen(x)
    return mean, torch.ones(()), vecs[:, :k] / (vals[:k] + eps).sqrt(), (k,)


@register("zca")
def _zca(x, eps=DEFAULT_WHITEN_EPS, **_) -> Fitted:
    """Whiten, then rotate back: U diag(1/sqrt(l + eps)) U^T. Of all whitening maps the one that
    keeps the output closest to the input, so images stay images (and fit a CNN)."""
    mean, vals, vecs = _eigen(x)
    w = (vecs / (vals + eps).sqrt()) @ vecs.T
    # A feature constant on train (digits' blank border) carries nothing: it stays exactly 0
    # instead of picking up the eigensolver's roundoff from the other features.
    const = x.reshape(len(x), -1).std(0) <= CONSTANT_STD
    w[const, :] = 0.0
    w[:, const] = 0.0
    return mean, torch.ones(()), w, tuple(x.shape[1:])


class Preprocess(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, kind: str,
                 proj: Optional[torch.Tensor] = None, out_shape: Optional[tuple] = None):
        super().__init__()
        self.kind = kind
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.register_buffer("proj", None if proj is None else proj.float().clone())
        self.out_shape = tuple(out_shape) if out_shape is not None else tuple(mean.shape)

    @classmethod
    def fit(cls, x_train: torch.Tensor, kind: str, components: Optional[int] = None,
            eps: float = DEFAULT_WHITEN_EPS) -> "Preprocess":
        """Fit `kind` on the training inputs only; val and test then get the same map."""
        mean, std, proj, out_shape = FITS[kind](x_train.float(), k=components, eps=eps)
        return cls(mean, std, kind, proj, out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            return (x - self.mean) / self.std
        z = (x.reshape(len(x), -1) - self.mean) @ self.proj
        return z.reshape(len(x), *self.out_shape)

    def extra_repr(self) -> str:
        return f"{self.kind}, out_shape={self.out_shape}"
