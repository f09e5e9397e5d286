"""Small synthetic data shaped like the data of the published cases (nothing is downloaded), and
the case registry. Every generator takes a seed: the three seeds of a case differ in data, init
and batch order."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass
class Case:
    name: str
    run: Callable[[int], object]  # seed -> the babysit.Watch that watched the loop
    source: str
    accepted: frozenset = frozenset()  # codes naming the right symptom (empty: a healthy program)
    layer: Optional[str] = None  # the `where` that localizes the fault, when a layer is at fault

    @property
    def healthy(self) -> bool:
        return not self.accepted


CASES: list[Case] = []


def _source(fn) -> str:
    if not fn.__doc__:
        raise ValueError(f"case {fn.__name__}: name its published source in its docstring")
    return " ".join(fn.__doc__.split())


def broken(accepted: set, layer: Optional[str] = None):
    """A broken program: `accepted` the finding codes that name its symptom, `layer` the `where`
    that localizes it (when a layer is at fault). Its docstring names the source."""
    def register(fn):
        CASES.append(Case(fn.__name__, fn, _source(fn), frozenset(accepted), layer))
        return fn
    return register


def healthy(fn):
    """A healthy program (no warning or error allowed); its docstring names the source."""
    CASES.append(Case(fn.__name__, fn, _source(fn)))
    return fn


def fit(model, opt, x, y, loss_fn, steps: int, batch: int, seed: int, schedule=None):
    """The loop most programs write (Keras' fit, written out): forward, zero_grad, backward,
    step, watch.step, then the schedule. Programs whose bug is in the loop write their own."""
    import babysit  # the benchmark's one use of babysit besides findings()

    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), batch, steps, seed):
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
        if schedule is not None:
            schedule.step()
    return watch


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batches(n: int, size: int, steps: int, seed: int):
    """`steps` index batches of `size` drawn from n examples, epoch by epoch (shuffled)."""
    g, done = gen(seed + 1000), 0
    while done < steps:
        for idx in torch.randperm(n, generator=g).split(size):
            if done == steps:
                return
            if len(idx) == size:
                yield idx
                done += 1


def circles(seed: int, n: int = 1000, noise: float = 0.1):
    """sklearn's make_circles (factor 0.8) scaled to [-1, 1], as AUTOTRAINER's simplednn.py does."""
    g = gen(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    radius = torch.where(y == 1, 0.8, 1.0)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], 1) + noise * torch.randn(n, 2, generator=g)
    return x / x.abs().max(0).values, y


def blobs(seed: int, n: int = 1000, centers: int = 3, features: int = 2, std: float = 2.0):
    """sklearn's make_blobs: centers uniform in [-10, 10], unscaled (as AUTOTRAINER's blob data)."""
    g = gen(seed)
    c = torch.rand(centers, features, generator=g) * 20 - 10
    y = torch.randint(0, centers, (n,), generator=g)
    return c[y] + std * torch.randn(n, features, generator=g), y


def regression(seed: int, n: int = 1000, features: int = 20, informative: int = 10, noise: float = 0.1):
    """sklearn's make_regression: y = X w + noise with w uniform in [0, 100) on the informative
    features, unscaled targets (std in the hundreds)."""
    g = gen(seed)
    x = torch.randn(n, features, generator=g)
    w = torch.zeros(features)
    w[:informative] = torch.rand(informative, generator=g) * 100
    return x, (x @ w + noise * torch.randn(n, generator=g))[:, None]


def tabular(seed: int, means: list, stds: list, n: int = 600, classes: int = 2):
    """Raw tabular features at their natural scales (a wine-quality or iris-like table); the class
    depends on a few standardized features."""
    g = gen(seed)
    z = torch.randn(n, len(means), generator=g)
    score = z[:, : max(2, classes)] @ torch.randn(max(2, classes), classes, generator=g)
    return z * torch.tensor(stds) + torch.tensor(means), score.argmax(1)


def images(seed: int, n: int = 512, channels: int = 1, size: int = 28, classes: int = 10,
           pixels: float = 1.0):
    """Class templates (smooth random blobs) plus noise, in [0, pixels] (1: as ToTensor gives,
    255: raw bytes)."""
    g = gen(seed)
    coarse = torch.rand(classes, channels, 7, 7, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.randint(0, classes, (n,), generator=g)
    x = (0.7 * templates[y] + 0.3 * torch.rand(n, channels, size, size, generator=g)).clamp(0, 1)
    return x * pixels, y


def standardize(x: torch.Tensor, dims) -> torch.Tensor:
    return (x - x.mean(dims, keepdim=True)) / x.std(dims, keepdim=True).clamp_min(1e-8)


def sequences(seed: int, n: int = 512, length: int = 40, features: int = 1, classes: int = 4):
    """Noisy waves whose frequency is the class (MNIST-1D-like), standardized: (n, length, features)."""
    g = gen(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    t = torch.linspace(0, 1, length)
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    wave = torch.sin(2 * math.pi * (1 + y[:, None]) * t + phase)
    x = wave[:, :, None] + 0.3 * torch.randn(n, length, features, generator=g)
    return standardize(x, (0, 1)), y


def tokens(seed: int, n: int = 1024, context: int = 8, vocab: int = 27):
    """Token windows from a random Markov chain: the next token depends on the last one."""
    g = gen(seed)
    table = torch.randint(0, vocab, (vocab, 3), generator=g)
    seq = [int(torch.randint(0, vocab, (1,), generator=g))]
    for _ in range(n + context):
        seq.append(int(table[seq[-1], torch.randint(0, 3, (1,), generator=g)]))
    s = torch.tensor(seq)
    idx = torch.arange(n)[:, None] + torch.arange(context + 1)
    return s[idx[:, :-1]], s[idx[:, 1:]]
