"""The doctor on a user's own loop: the loss's graph (activation-before-loss, log-of-softmax, the
loss kind for the ln(C) rules), gradients never cleared, unscaled inputs, converged runs, and
Watch's live and ignore options."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit.doctor import RunView, diagnose
from babysit.errors import UnknownName


def _data(n=256, d=10, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, :c]).argmax(1)


def _mlp(out=5, last=None, d=10):
    torch.manual_seed(0)
    layers = [nn.Linear(d, 32), nn.Tanh(), nn.Linear(32, out)]
    return nn.Sequential(*layers, *([last] if last is not None else []))


def _loop(model, loss_fn, steps=3, x=None, y=None, opt=None, zero_grad=True, accumulate=1, **watch_kw):
    x, y = (x, y) if x is not None else _data()
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.1)
    watch = babysit.Watch(model, opt, every=watch_kw.pop("every", 200), **watch_kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for _ in range(accumulate):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = loss_fn(model(x[idx]), y[idx]) / accumulate
            loss.backward()
        opt.step()
        if zero_grad:
            opt.zero_grad()
        watch.step(loss)
    return watch


def _codes(watch, severities=("warning", "error")):
    return {(f.code, f.where) for f in watch.findings() if f.severity in severities}


def _onehot_bce(out, y):
    return F.binary_cross_entropy_with_logits(out, F.one_hot(y, 5).float())


@pytest.mark.parametrize("last, loss_fn, where", [
    (nn.Softmax(dim=1), F.cross_entropy, "3"),
    (nn.Sigmoid(), _onehot_bce, "3"),
    (nn.ReLU(), F.cross_entropy, "3"),
])
def test_an_activation_before_a_loss_that_applies_its_own_is_named_with_its_layer(last, loss_fn, where):
    found = [f for f in _loop(_mlp(last=last), loss_fn).findings() if f.code == "activation-before-loss"]
    assert [(f.severity, f.where) for f in found] == [("error", where)]
    if isinstance(last, nn.Softmax):
        assert found[0].evidence["loss_floor"] == pytest.approx(math.log(1 + 4 / math.e), abs=1e-3)
        assert found[0].evidence["chain"][:3] == ["NllLoss", "LogSoftmax", "Softmax"]
    without = _loop(_mlp(), loss_fn)
    assert not [f for f in without.findings() if f.code in ("activation-before-loss", "log-of-softmax")]
    assert without.loss_graph["loss"] == ("cross_entropy" if loss_fn is F.cross_entropy else "bce_with_logits")


def test_a_functional_softmax_and_one_applied_in_the_loss_code_are_found_too():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _mlp()

        def forward(self, x):
            return F.softmax(self.body(x), dim=-1)

    found = [f for f in _loop(Net(), F.cross_entropy).findings() if f.code == "activation-before-loss"]
    assert [f.where for f in found] == ["softmax#0"]
    outside = _loop(_mlp(), lambda out, y: F.cross_entropy(torch.softmax(out, 1).view(-1, 5), y))
    assert [f.where for f in outside.findings() if f.code == "activation-before-loss"] == ["output"]


def test_a_softmax_over_one_unit_is_found_whatever_the_loss():
    model = _mlp(out=1, last=nn.Softmax(dim=1))
    watch = _loop(model, lambda out, y: F.binary_cross_entropy(out.squeeze(1), (y > 2).float()))
    found = [f for f in watch.findings() if f.code == "activation-before-loss"]
    assert [f.where for f in found] == ["3"] and "single unit" in found[0].evidence["reason"]


def test_log_of_a_softmax_written_by_hand():
    def hand_ce(out, y):
        return -(F.one_hot(y, 5) * torch.log(F.softmax(out, dim=1))).sum(1).mean()

    watch = _loop(_mlp(), hand_ce)
    assert ("log-of-softmax", "loss") in _codes(watch)
    assert watch.loss_graph["loss"] == "cross_entropy"
    nll = _loop(_mlp(last=nn.Softmax(dim=1)), lambda out, y: F.nll_loss(torch.log(out), y))
    assert ("log-of-softmax", "3") in _codes(nll)
    assert not [f for f in _loop(_mlp(), lambda out, y: F.nll_loss(F.log_softmax(out, 1), y)).findings()
                if f.code in ("log-of-softmax", "activation-before-loss")]


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_gradients_never_cleared_are_an_error_with_sgd_and_adam(opt):
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01) if opt == "sgd" else torch.optim.Adam(model.parameters())
    watch = _loop(model, F.cross_entropy, steps=12, opt=optimizer, zero_grad=False)
    assert ("grads-not-zeroed", "optimizer") in _codes(watch, ("error",))
    f = next(f for f in watch.findings() if f.code == "grads-not-zeroed")
    assert f.evidence["windows_kept"] == f.evidence["windows"] == 2  # steps 2-7 and 10-12 (step 1: no past)


def test_accumulation_over_four_steps_and_the_readme_loop_are_silent():
    accumulated = _loop(_mlp(), F.cross_entropy, steps=12, accumulate=4)
    accumulated.flush()
    assert len(accumulated.grad_checks) == 10 and not any(kept for _, kept in accumulated.grad_checks)
    assert "grads-not-zeroed" not in {c for c, _ in _codes(accumulated)}
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = babysit.Watch(model, opt)
    x, y = _data()
    for _ in range(12):  # forward, zero_grad, backward, step: the old gradients exist during the forward
        loss = F.cross_entropy(model(x[:32]), y[:32])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        watch.step(loss)
    assert "grads-not-zeroed" not in {c for c, _ in _codes(watch)}


def test_unscaled_inputs_in_a_users_loop_are_not_centred():
    x, y = _data()
    raw = x * 300 + 2000  # features in the thousands
    watch = _loop(_mlp(), F.cross_entropy, steps=5, x=raw, y=y, opt=None)
    f = next(f for f in watch.findings() if f.code == "data-not-centered")
    assert f.where == "input" and f.evidence["mean_abs_over_std"] > 5 and f.evidence["source"] == "watch"
    assert "data-not-centered" not in {c for c, _ in _codes(_loop(_mlp(), F.cross_entropy, steps=5))}


def test_the_init_loss_rules_judge_classification_losses_only():
    x, _ = _data()
    target = x[:, :5] * 10  # a regression whose first MSE is far above ln(5)
    watch = _loop(_mlp(), F.mse_loss, steps=5, x=x, y=target)
    assert watch.loss_graph["loss"] == "mse"
    assert not [f for f in watch.findings() if f.code.startswith("init-loss")]
    view = RunView.from_watch(watch)
    view.loss_kind = None  # unknown: judged as a cross-entropy, as before
    assert "init-loss-high" in {f.code for f in diagnose(view)}


def test_a_run_converged_to_near_zero_loss_gets_no_warning():
    """The issue's false alarm: a tanh MLP fit by SGD to a train loss of ~2.5e-4 was told to raise
    its lr (update-ratio-low)."""
    x, y = _data(n=64)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    watch = babysit.Watch(model, opt, every=200)
    for _ in range(3000):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
    findings = watch.findings()
    assert watch.losses[-1] < 0.02 * math.log(5)
    assert RunView.from_watch(watch).converged()
    assert [f for f in findings if f.severity != "info"] == []
    view = RunView.from_watch(watch)
    view.losses = view.losses[:1] + [0.5] * (len(view.losses) - 1)  # the same samples, not converged
    assert "update-ratio-low" in {f.code for f in diagnose(view)}


def test_live_prints_a_finding_once_and_ignore_silences_a_code(capsys):
    _loop(_mlp(last=nn.Softmax(dim=1)), F.cross_entropy, steps=12, live=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if "activation-before-loss" in line]
    assert len(lines) == 1 and lines[0].startswith("babysit step 1:")
    quiet = _loop(_mlp(last=nn.Softmax(dim=1)), F.cross_entropy, ignore=["activation-before-loss"])
    assert "activation-before-loss" not in {f.code for f in quiet.findings()}
    with pytest.raises(UnknownName, match="Watch\\(ignore=...\\).*'no-such-code'"):
        babysit.Watch(_mlp(), ignore=["no-such-code"])


def test_softmax_outputs_are_recorded_but_not_judged():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.out = nn.Linear(10, 10), nn.Linear(10, 5)

        def forward(self, x):
            w = F.softmax(100 * self.q(x) @ x.T, dim=-1)  # sharply peaked attention weights
            return self.out(w @ x)

    watch = _loop(Attention(), F.cross_entropy)
    watch.flush()
    row = next(r for r in watch.samples[0]["layers"] if r["name"] == "softmax#0")
    assert row["kind"] == "softmax" and row["saturated"] > 0.5
    assert not [f for f in watch.findings() if f.where == "softmax#0"]


def test_babysit_doctor_on_a_library_run_reads_the_graph_the_checks_and_the_inputs(tmp_path):
    """`babysit doctor RUN` of a Watch(run_dir=...) loop: watch.jsonl carries what the new rules
    read, so the findings from disk are the live ones."""
    x, y = _data()
    model = _mlp(last=nn.Softmax(dim=1))
    watch = _loop(model, F.cross_entropy, steps=12, x=x * 300 + 2000, y=y, zero_grad=False,
                  run_dir=tmp_path)
    live = sorted((f.code, f.where) for f in watch.findings())
    watch.close()
    from_disk = sorted((f.code, f.where) for f in diagnose(RunView.from_run_dir(tmp_path, finished=True)))
    assert {("activation-before-loss", "3"), ("grads-not-zeroed", "optimizer"),
            ("data-not-centered", "input")} <= set(live)
    assert from_disk == live
