"""Broken setups of the library path: a user's own loop with babysit.Watch (DESIGN.md's snippet).
Each builder trains briefly and returns its findings as dicts (code, where, severity)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import babysit

STEPS, BATCH = 600, 64


def _blobs(files):
    d = np.load(files["blobs"])
    x = torch.tensor(d["x"])
    x = (x - x.mean(0)) / x.std(0)
    return x, torch.tensor(d["y"])


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 20))


def _loop(model, optimizer, loss_fn, x, y, zero_grad=True, **findings_kw):
    watch = babysit.Watch(model, optimizer, every=50)
    gen = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        idx = torch.randint(0, len(x), (BATCH,), generator=gen)
        loss = loss_fn(model, x[idx], y[idx])
        if zero_grad:
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
    lam = 1e-4

    def l2(m):
        return sum((p ** 2).sum() for p in m.parameters() if p.ndim > 2)

    # item 4 of LECTURES.md §2 on the user's own model and penalty: the library path's check
    checks = babysit.preflight(model, F.cross_entropy, (x, y), regularizer=l2, reg_strength=lam,
                               checks=["regularization"])
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3),
                 lambda m, xb, yb: F.cross_entropy(m(xb), yb) + lam * l2(m), x, y, num_classes=20,
                 preflight=[c.as_dict() for c in checks])


def watch_loop_makemore_original(files):
    """MM3's first net (N(0,1) everywhere) in a plain loop: the same findings as the Trainer."""
    from babysit.train.trainer import build_start
    spec = babysit.load_spec("makemore-original")
    _, data, model = build_start(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return _loop(model, opt, lambda m, xb, yb: F.cross_entropy(m(xb), yb), data.train.x, data.train.y)


def softmax_before_cross_entropy(files):
    """nn.Softmax as the model's last layer, then F.cross_entropy (which applies its own): the
    loss cannot go below ln(1 + 19/e) = 2.07 for 20 classes."""
    x, y = _blobs(files)
    model = nn.Sequential(*_mlp(), nn.Softmax(dim=1))
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3), lambda m, xb, yb: F.cross_entropy(m(xb), yb), x, y)


def log_of_softmax_by_hand(files):
    """F.nll_loss(torch.log(F.softmax(logits))): a cross-entropy in two unstable steps."""
    x, y = _blobs(files)
    model = _mlp()
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3),
                 lambda m, xb, yb: F.nll_loss(torch.log(F.softmax(m(xb), dim=1)), yb), x, y)


def no_zero_grad(files):
    """optimizer.zero_grad() never called: every step adds to the sum of all earlier gradients."""
    x, y = _blobs(files)
    model = _mlp()
    return _loop(model, torch.optim.Adam(model.parameters(), 1e-3), lambda m, xb, yb: F.cross_entropy(m(xb), yb),
                 x, y, zero_grad=False)
