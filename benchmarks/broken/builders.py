"""Broken setups of the library path: a user's own loop with babysit.Watch (DESIGN.md's snippet).
Each builder trains briefly and returns its findings as dicts (code, where, severity)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit.preflight.checks import CheckResult

STEPS, BATCH = 600, 64
# Item 4 of LECTURES.md §2: raising regularization must raise the loss. Measured here on the user's
# own loss function (the Trainer's path has the preflight check for it): 1,000x the strength must
# raise the loss by more than REG_RISE.
REG_RISE = 0.01


def _blobs(files):
    d = np.load(files["blobs"])
    x = torch.tensor(d["x"])
    x = (x - x.mean(0)) / x.std(0)
    return x, torch.tensor(d["y"])


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 20))


def _loop(model, optimizer, loss_fn, x, y, **findings_kw):
    watch = babysit.Watch(model, optimizer, every=50)
    gen = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        idx = torch.randint(0, len(x), (BATCH,), generator=gen)
        loss = loss_fn(model, x[idx], y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        watch.step(loss)
    return [{"code": f.code, "where": f.where, "severity": f.severity} for f in watch.findings(**findings_kw)]


def wrong_loss_nll_on_logits(files):
    """F.nll_loss on raw logits (the log_softmax forgotten): the 'loss' starts near 0, far below ln(20)."""
    x, y = _blobs(files)
    model = _mlp()
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3), lambda m, xb, yb: F.nll_loss(m(xb), yb), x, y,
                 num_classes=20)


def l2_on_no_parameter(files):
    """An L2 penalty summed over parameters with ndim > 2 (conv kernels): an MLP has none, so the
    penalty is 0 at any strength."""
    x, y = _blobs(files)
    model = _mlp()

    def loss_fn(m, xb, yb, lam=1e-4):
        l2 = sum((p ** 2).sum() for p in m.parameters() if p.ndim > 2)
        return F.cross_entropy(m(xb), yb) + lam * l2

    with torch.no_grad():
        base, strong = float(loss_fn(model, x[:512], y[:512], 0.0)), float(loss_fn(model, x[:512], y[:512], 1e-1))
    rise = (strong - base) / base
    check = CheckResult("regularization", "pass" if rise > REG_RISE else "fail",
                        {"loss_reg_0": round(base, 4), "loss_reg_0.1": round(strong, 4), "rise": round(rise, 4)},
                        f"the loss rises by more than {REG_RISE:.0%} when regularization goes up 1000x",
                        "" if rise > REG_RISE else "the penalty never reaches the loss: check which parameters it sums")
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3), loss_fn, x, y, num_classes=20,
                 preflight=[check.as_dict()])


def watch_loop_makemore_original(files):
    """MM3's first net (N(0,1) everywhere) in a plain loop: the same findings as the Trainer."""
    from babysit.train.trainer import build_start
    spec = babysit.load_spec("makemore-original")
    _, data, model = build_start(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return _loop(model, opt, lambda m, xb, yb: F.cross_entropy(m(xb), yb), data.train.x, data.train.y)
