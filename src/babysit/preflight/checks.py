"""The babysitting checklist (LECTURES.md §2) as checks: each one measures, compares with what the
lectures expect, and on failure names the likely causes and the fix. A check is a function
Setup -> CheckResult registered in CHECKS with `@check(name, order)`: the order is the
checklist's (LECTURES.md §2); a check of your own goes after the shipped ones unless told.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import Dataset, Split
from babysit.losses import Loss, as_loss
from babysit.penalties import with_penalty
from babysit.reference import CENTRED, INIT_LOSS_LOW
from babysit.registry import LAST, Registry
from babysit.train.batches import make_sampler

# Initial loss against ln(C) (item 3): diffuse logits give ln(C); "confidently wrong" ones give
# much more (MM3's first net: 27 against 3.29, 8x). Within 1.5x is fine, past 3x is a failure;
# below INIT_LOSS_LOW x ln(C) (reference.py) the labels leak into the inputs, or the loss is wrong.
INIT_LOSS_WARN, INIT_LOSS_FAIL = 1.5, 3.0
# Data (item 1): inputs count as centred below reference.CENTRED (|mean| / std per feature on
# average), and as comparably scaled when the feature stds span less than 100x.
SCALE_SPREAD = 100.0
# Overfit a tiny subset (item 5): 20-50 examples, regularization off, to ~100% train accuracy;
# without accuracy (regression), to a loss below (1 - TINY_ACC) of the reference loss (MSE: R^2 >= 0.99).
TINY_EXAMPLES, TINY_STEPS, TINY_ACC = 32, 300, 0.99


@dataclass
class CheckResult:
    name: str
    status: str  # pass | warn | fail | skip
    measured: dict = field(default_factory=dict)
    expected: str = ""
    advice: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Setup:
    """What a check examines: the model as training would start from it, the data, how the
    optimizer is made, and the loss. Checks never train `model` itself, only copies."""

    model: nn.Module
    data: Dataset
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    penalty: Optional[tuple[Callable[[nn.Module], torch.Tensor], float]] = None  # (fn, strength)
    batch_size: int = 32
    # the spec's data.augment as a wrapper of training batches (sampler, split, seed) -> sampler;
    # only the lr range test uses it: the other checks want the plain data, regularization off
    augment: Optional[Callable] = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def loss_kind(self) -> Loss:
        """What the loss is (babysit.losses): its reference value, what "correct" means."""
        return as_loss(self.loss_fn)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, reg_scale: float = 1.0) -> torch.Tensor:
        """The loss training minimizes, with the regularization term scaled by reg_scale."""
        return with_penalty(self.loss_fn(model(x), y), model, self.penalty, reg_scale)

    def examples(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n training examples, on the model's device."""
        head = self.data.train.in_memory(n).to(self.device)
        return head.x, head.y

    def training_batches(self, seed: int = 0):
        """Batches of the training split on the model's device, augmented as training sees them."""
        train = self.data.train.to(self.device)
        sampler = make_sampler(train, self.batch_size, seed=seed)
        return self.augment(sampler, train, seed) if self.augment else sampler

    def optimizer_groups(self) -> list[dict]:
        """Each parameter group's settings (lr, weight_decay, ...) as the optimizer starts, read
        off one made for a copy of the model."""
        opt = self.make_optimizer(copy.deepcopy(self.model))
        return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


Check = Callable[[Setup], CheckResult]
CHECKS: Registry[Check] = Registry("check")


def check(name: str, order: float = LAST):
    """Register a check under `name`; `order` places it in the checklist (the shipped ones are 1-6)."""
    return CHECKS.register(name, order=order)


@check("data", order=1)
def check_data(setup: Setup) -> CheckResult:
    """Labels in range, class balance, NaN/Inf, centring and scale of the inputs as the network
    sees them (after the spec's preprocessing layer), and examples shared between train and val.
    Streamed data are checked on a sample; real-valued targets (regression) have no classes."""
    data = setup.data
    train = data.train.in_memory()
    x, y = train.x, train.y
    prep = getattr(setup.model, "prep", None)
    if prep is not None:
        with torch.no_grad():
            # the run's own layer stays where it is (a .to() would move it off the GPU in place)
            x = prep(x.to(setup.device)).cpu() if x.dtype.is_floating_point else x
    labels = setup.loss_kind.labels(y)
    expected = (f"labels in [0, {data.num_classes}), " if labels else "finite targets, ") + \
        "finite, zero-centred, comparable scales, no train/val overlap"
    outside = (y < 0) | (y >= data.num_classes) if labels else torch.zeros(0, dtype=torch.bool)
    if outside.any():
        bad = y[outside]
        return CheckResult("data", "fail", {"labels_out_of_range": int(outside.sum()), "label_min": int(y.min()),
                                            "label_max": int(y.max()), "num_classes": data.num_classes},
                           expected, f"{int(outside.sum())} train labels lie outside [0, {data.num_classes}) "
                           f"(e.g. {bad[:3].tolist()}): the model has {data.num_classes} outputs; relabel to "
                           "0..C-1 or widen the output layer")
    measured = {"stats_per": "channel" if x.dim() == 4 else "feature"}
    if data.streamed:
        measured["sample"] = len(train)
    problems, advice = [], []
    absent = 0
    if labels:
        counts = torch.bincount(y, minlength=data.num_classes).float()
        present = counts[counts > 0]
        measured.update(classes_present=int((counts > 0).sum()), num_classes=data.num_classes,
                        class_balance_min_max=round(float(present.min() / present.max()), 4))
        absent = data.num_classes - measured["classes_present"]
    else:
        t = y.double()
        measured.update(target_mean=float(f"{float(t.mean()):.4g}"), target_std=float(f"{float(t.std()):.4g}"))
    if absent:  # imbalance itself is reported, not judged: next-character tasks are imbalanced by nature
        problems.append(f"{absent} of {data.num_classes} classes never occur in train")
        advice.append(f"{absent} classes have no training example, so the model can never predict them; "
                      "check the labels or the split")
    if x.dtype.is_floating_point:
        # images (N, C, H, W): per channel, as they are preprocessed (LECTURES.md §1: pixels share
        # a scale; a blank border pixel's tiny std is not a scale problem); else per feature
        flat = (x.transpose(0, 1).reshape(x.shape[1], -1).T if x.dim() == 4 else x.reshape(len(x), -1)).double()
        mean, std = flat.mean(0), flat.std(0)
        live = std > 0
        off_centre = float((mean[live].abs() / std[live]).mean()) if live.any() else 0.0
        spread = float(std[live].max() / std[live].min()) if live.any() else 1.0
        measured.update(mean_abs_over_std=round(off_centre, 3), std_spread=round(spread, 2),
                        non_finite=int((~torch.isfinite(flat)).sum()))
        if measured["non_finite"]:
            problems.append("NaN/Inf inputs")
            advice.append("clean or impute the NaN/Inf values")
        if off_centre > CENTRED:
            problems.append("inputs not zero-centred")
            advice.append("set data.preprocess: center (images) or standardize (LECTURES.md §1)")
        if spread > SCALE_SPREAD:
            problems.append("feature scales differ widely")
            advice.append("set data.preprocess: standardize")
    shared = _shared_examples(train, data.val.in_memory())
    measured["shared_train_val"] = shared
    if shared:
        problems.append(f"{shared} val examples also in train")
        advice.append("de-duplicate before splitting: shared examples make val look better than it is")
    status = "fail" if measured.get("non_finite") else ("warn" if problems else "pass")
    return CheckResult("data", status, measured, expected, "; ".join(advice))


def _shared_examples(train: Split, val: Split) -> int:
    if not train.x.dtype.is_floating_point:
        return 0  # token contexts repeat by nature (names share prefixes)
    seen = set(_row_keys(train.x))
    return sum(key in seen for key in _row_keys(val.x))


def _row_keys(x: torch.Tensor):
    """One hashable key per example: its input's bytes."""
    return (row.numpy().tobytes() for row in x.reshape(len(x), max(x[0].numel(), 1) if len(x) else 0).cpu())


# What a first loss far above its reference means, by loss (item 3; MSE: Karpathy's "init well":
# a regression's output bias starts at the targets' mean).
TOO_HIGH_ADVICE = {
    "cross_entropy": "the softmax is confidently wrong at init (a 'hockey stick' loss curve follows): "
                     "scale the output layer's weights down (model.init.output.scale: 0.01) and zero its bias",
    "bce_with_logits": "the sigmoid outputs are confidently wrong at init: scale the output layer's weights "
                       "down (model.init.output.scale: 0.01) and zero its bias",
    "mse": "the predictions start far from the targets: standardize the targets, or start the output "
           "layer's bias at their mean and scale its weights down (model.init.output.scale: 0.01)",
}


@check("initial-loss", order=2)
@torch.no_grad()
def check_initial_loss(setup: Setup) -> CheckResult:
    """The first loss, regularization off, against the loss of diffuse predictions (item 3): ln(C)
    for a C-class softmax, ln 2 for a sigmoid (bce), the targets' variance for MSE (babysit.losses)."""
    data, kind = setup.data, setup.loss_kind
    m = copy.deepcopy(setup.model).train()  # a copy: a train-mode pass moves BatchNorm's running statistics
    x, y = setup.examples(1024)
    loss = float(setup.loss(m, x, y, reg_scale=0.0))  # as the first training step sees it (batch statistics)
    ref = kind.reference(y, data.num_classes)
    if ref is None or ref[0] <= 0:
        return CheckResult("initial-loss", "skip", {"initial_loss": round(loss, 4), "loss": kind.name},
                           "a loss with a known value at init",
                           f"no reference value for loss {kind.name}: compare the first loss with what "
                           "diffuse predictions give by hand" if ref is None else
                           "the targets do not vary: nothing to compare the first loss with")
    expected, named, key = ref
    ratio = loss / expected
    measured = {"initial_loss": round(loss, 4), key: round(expected, 4), "ratio": round(ratio, 2)}
    text = f"about {named} = {expected:.3g}"
    if ratio > INIT_LOSS_WARN:
        return CheckResult("initial-loss", "fail" if ratio > INIT_LOSS_FAIL else "warn", measured, text,
                           TOO_HIGH_ADVICE.get(kind.kind, "the first loss is far above that of diffuse "
                                                          "predictions: scale the output layer down"))
    if ratio < INIT_LOSS_LOW:
        return CheckResult("initial-loss", "fail", measured, text,
                           "the loss is far below chance before training: labels may leak into the inputs, "
                           f"or the loss is not the {kind.name} the targets need")
    return CheckResult("initial-loss", "pass", measured, text)


@check("overfit-tiny", order=5)
def check_overfit_tiny(setup: Setup) -> CheckResult:
    """Overfit a tiny subset with regularization off: train accuracy near 100% (item 5)."""
    tiny = copy.deepcopy(setup.model)
    for m in tiny.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    train = setup.data.train.in_memory()
    idx = _distinct_inputs(train.x, TINY_EXAMPLES)
    x, y = train.x[idx].to(setup.device), train.y[idx].to(setup.device)
    kind = setup.loss_kind
    opt = setup.make_optimizer(tiny)
    for group in opt.param_groups:
        group["weight_decay"] = 0.0
    tiny.train()
    for _ in range(TINY_STEPS):
        loss = setup.loss(tiny, x, y, reg_scale=0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    tiny.eval()
    with torch.no_grad():
        out = tiny(x)
        right = kind.correct(kind.to_space(out), y)
        final = float(setup.loss_fn(out, y))
        # regression: the loss of predicting the targets' mean (MSE), else the untrained model's
        ref = None if right is not None else (
            kind.reference(y, setup.data.num_classes)
            or (float(setup.loss_fn(copy.deepcopy(setup.model).eval()(x), y)), "the initial loss", ""))
    measured = {"examples": len(x), "steps": TINY_STEPS, "final_loss": round(final, 4)}
    if right is not None:
        acc = float(right.mean())
        measured["train_acc"] = round(acc, 4)
        expected = f"train accuracy >= {TINY_ACC:.0%} on {len(x)} examples in {TINY_STEPS} steps, regularization off"
        fit = acc >= TINY_ACC
    else:  # regression: the loss against that of predicting the targets' mean (R^2 for MSE)
        bound = (1 - TINY_ACC) * ref[0]
        measured["loss_bound"] = float(f"{bound:.3g}")
        expected = (f"loss <= {1 - TINY_ACC:.0%} of {ref[1]} on {len(x)} examples "
                    f"in {TINY_STEPS} steps, regularization off")
        fit = final <= bound
    if fit and math.isfinite(final):
        return CheckResult("overfit-tiny", "pass", measured, expected)
    return CheckResult("overfit-tiny", "fail", measured, expected,
                       "the model cannot memorize a tiny subset; likely causes (LECTURES.md §2): units saturated "
                       "at init, wrong gradients, unnormalized inputs, or a learning rate too large (or too small)")


def _distinct_inputs(x: torch.Tensor, n: int) -> torch.Tensor:
    """The first n examples whose inputs differ: a repeated input with two labels (names share
    contexts such as '...') could never be fit to 100%."""
    seen, keep = set(), []
    for i, key in enumerate(_row_keys(x)):
        if key not in seen:
            seen.add(key)
            keep.append(i)
            if len(keep) == n:
                break
    return torch.tensor(keep)
