"""The loss's graph read back: which loss, and what the model's output went through before it,
through the arithmetic a loop puts around a loss (penalties, scaling, casts, views)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit.watch.graph import read_loss_graph


def _out(d=6, c=4):
    torch.manual_seed(0)
    lin = nn.Linear(d, c)
    return lin, lin(torch.randn(8, d)), torch.randint(0, c, (8,))


@pytest.mark.parametrize("loss_fn, kind", [
    (lambda o, y: F.cross_entropy(o, y), "cross_entropy"),
    (lambda o, y: F.cross_entropy(o, y, label_smoothing=0.1), "cross_entropy"),
    (lambda o, y: F.cross_entropy(o, F.one_hot(y, 4).float()), "cross_entropy"),  # soft labels
    (lambda o, y: F.nll_loss(F.log_softmax(o, 1), y), "cross_entropy"),
    (lambda o, y: F.nll_loss(o, y), "nll"),
    (lambda o, y: F.binary_cross_entropy_with_logits(o, F.one_hot(y, 4).float()), "bce_with_logits"),
    (lambda o, y: F.binary_cross_entropy(torch.sigmoid(o), F.one_hot(y, 4).float()), "bce"),
    (lambda o, y: F.mse_loss(o, F.one_hot(y, 4).float()), "mse"),
    (lambda o, y: ((o - F.one_hot(y, 4)) ** 2).mean(), "mse"),
    (lambda o, y: F.smooth_l1_loss(o, F.one_hot(y, 4).float()), "other"),
])
def test_the_loss_kind_is_read_through_penalties_scaling_and_views(loss_fn, kind):
    lin, out, y = _out()
    loss = loss_fn(out.view(8, 4), y) / 4 + 1e-4 * lin.weight.pow(2).sum()  # accumulation, L2 penalty
    loss.backward()  # the graph is read after the user's own backward
    graph = read_loss_graph(loss)
    assert graph["loss"] == kind and graph["before_loss"] is None and graph["log_of_softmax"] is None


def test_squashed_outputs_and_their_chain():
    _, out, y = _out()
    cases = {"softmax": F.softmax(out, 1), "sigmoid": torch.sigmoid(out), "relu": F.relu(out),
             "exp(log_softmax)": F.log_softmax(out, 1).exp()}
    for name, squashed in cases.items():
        graph = read_loss_graph(F.cross_entropy(squashed.reshape(8, 4), y))
        assert graph["before_loss"]["activation"] == name.replace("exp(log_softmax)", "softmax"), name
    graph = read_loss_graph(F.cross_entropy(F.softmax(out, 1), y))
    assert graph["ops"] == ["NllLoss", "LogSoftmax", "Softmax", "Addmm"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = F.cross_entropy(F.softmax(nn.Linear(6, 4)(torch.randn(8, 6)), 1), y)
    assert read_loss_graph(mixed)["before_loss"]["activation"] == "softmax"  # through the casts


def test_log_of_softmax_and_softmax_twice():
    _, out, y = _out()
    hand = read_loss_graph(-(F.one_hot(y, 4) * torch.log(F.softmax(out, 1))).sum(1).mean())
    assert hand["loss"] == "cross_entropy" and hand["log_of_softmax"] is not None and hand["before_loss"] is None
    twice = read_loss_graph(F.mse_loss(F.softmax(F.softmax(out, 1), 1), F.one_hot(y, 4).float()))
    assert twice["before_loss"]["reason"].startswith("softmax applied to outputs already squashed")
    assert read_loss_graph(out.sum())["loss"] == "other"  # no loss node: nothing to say
