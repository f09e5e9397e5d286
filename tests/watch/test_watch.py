"""Watch's numbers against a direct computation on the same tensors, and its cost model: hooks
only on sampled steps, evaluation passes ignored, one sync per flush."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Watch
from babysit.watch import stats as S


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))


def _step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def test_sampled_numbers_match_a_direct_computation_after_an_adam_step():
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(256, 12) * 2.0, torch.randint(0, 5, (256,))
    seen = {}
    model[1].register_forward_hook(lambda m, i, o: seen.__setitem__("tanh", o.detach().clone()))
    model[3].register_forward_hook(lambda m, i, o: seen.__setitem__("relu", o.detach().clone()))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    watch = Watch(model, opt, every=10)
    _step(model, opt, x, y)
    watch.step()
    watch.flush()
    sample = watch.samples[0]
    assert sample["step"] == 1
    tanh = next(r for r in sample["layers"] if r["name"] == "1")
    h = seen["tanh"]
    assert tanh["mean"] == pytest.approx(h.mean().item(), abs=1e-6)
    assert tanh["std"] == pytest.approx(h.std().item(), rel=1e-5)
    assert tanh["saturated"] == pytest.approx((h.abs() > 0.97).float().mean().item(), abs=1e-7)
    assert tanh["saturated"] > 0.01  # inputs x2: some saturation, so the check is not vacuous
    relu = next(r for r in sample["layers"] if r["name"] == "3")
    assert relu["zero"] == pytest.approx((seen["relu"] <= 0).float().mean().item(), abs=1e-7)
    assert relu["dead"] == pytest.approx((seen["relu"] <= 0).all(0).float().mean().item(), abs=1e-7)
    assert sum(tanh["hist"]) == pytest.approx(1.0, abs=1e-5)

    for row in sample["params"]:
        p = dict(model.named_parameters())[row["name"]]
        w, w0 = p.detach(), before[row["name"]]
        expected = math.log10((w - w0).std().item() / w.std().item())  # the update Adam applied
        assert row["update_data"] == pytest.approx(expected, abs=1e-4), row["name"]
        assert row["grad_data"] == pytest.approx(p.grad.std().item() / w.std().item(), rel=1e-4)
        assert row["norm"] == pytest.approx(w.norm().item(), rel=1e-5)
    # Adam's first step moves each weight by about lr: update:data is log10(lr / std(w)), not lr*grad's
    w0 = dict(model.named_parameters())["0.weight"].detach()
    row0 = next(r for r in sample["params"] if r["name"] == "0.weight")
    assert row0["update_data"] == pytest.approx(math.log10(1e-2 / w0.std().item()), abs=0.1)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()
    assert sample["grad_norm"] == pytest.approx(norm, rel=1e-5)


def test_gradient_statistics_of_activations_match_autograd():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(128, 12), torch.randint(0, 5, (128,))
    grads = {}
    model[1].register_full_backward_hook(lambda m, gi, go: grads.__setitem__("tanh", go[0].detach().clone()))
    watch = Watch(model, opt, every=10)
    _step(model, opt, x, y)
    watch.step()
    watch.flush()
    tanh = next(r for r in watch.samples[0]["layers"] if r["name"] == "1")
    assert tanh["grad_std"] == pytest.approx(grads["tanh"].std().item(), rel=1e-5)
    assert tanh["grad_mean"] == pytest.approx(grads["tanh"].mean().item(), abs=1e-9)


def test_hooks_exist_only_around_sampled_steps_and_evaluation_is_ignored():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hooks = nn.modules.module._global_forward_hooks  # Watch's probe hooks every module's forward at once
    others = len(hooks)  # an unclosed Watch of another test may be armed
    watch = Watch(model, opt, every=5)
    x, y = torch.randn(32, 12), torch.randint(0, 5, (32,))
    armed = []
    for step in range(1, 11):
        armed.append(len(hooks) > others)
        _step(model, opt, x, y)
        model.eval()
        with torch.no_grad():
            model(torch.randn(7, 12) * 100)  # an evaluation pass between steps: never recorded
        model.train()
        watch.step()
    watch.close()
    assert armed == [True, True, False, False, True, False, False, False, False, True]  # 1, 2, 5: EARLY_STEPS
    assert [s["step"] for s in watch.samples] == [1, 2, 5, 10]
    assert len(hooks) == others and not model[1]._forward_hooks  # nothing left behind
    for s in watch.samples:
        tanh = next(r for r in s["layers"] if r["name"] == "1")
        assert tanh["saturated"] < 0.5  # the x100 evaluation batch would be ~all saturated


def test_loss_and_lr_at_every_step_with_one_fetch_per_flush():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    watch = Watch(model, opt, every=100, flush_every=4)
    x, y = torch.randn(32, 12), torch.randint(0, 5, (32,))
    losses = []
    for _ in range(10):
        loss = _step(model, opt, x, y)
        losses.append(loss.item())
        watch.step(loss)
        sched.step()
    assert len(watch.losses) == 8  # two flushes of four; the last two still on the device
    watch.close()
    assert watch.losses == pytest.approx(losses)
    assert watch.lrs == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125])


def test_conv_activations_count_dead_channels():
    h = torch.randn(8, 4, 5, 5)
    h[:, 2] = -1.0  # channel 2 never active
    row = S.activation_stats(h.relu()[None], "relu")[0]
    assert row[S.ACT_FIELDS.index("dead")].item() == pytest.approx(0.25)
    assert row[S.ACT_FIELDS.index("zero")].item() == pytest.approx(((h.relu()) <= 0).float().mean().item())


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every must be >= 1.*got 0"):
        Watch(_net(), every=0)


def test_gradient_norm_at_every_step_when_asked():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = Watch(model, opt, every=100, grad_norm_every_step=True)
    x, y = torch.randn(32, 12), torch.randint(0, 5, (32,))
    expected = []
    for _ in range(5):
        loss = _step(model, opt, x, y)
        expected.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item())
        watch.step(loss)
    watch.close()
    assert watch.grad_norms == pytest.approx(expected, rel=1e-5)
    assert watch.samples[0]["grad_norm"] == pytest.approx(expected[0], rel=1e-5)


def test_maxout_layers_are_watched_after_the_weights_that_feed_them():
    from babysit.doctor import RunView
    from babysit.nn import Maxout

    torch.manual_seed(0)
    model = nn.Sequential(Maxout(12, 16, pieces=3), Maxout(16, 16), nn.Linear(16, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = {}
    model[1].register_forward_hook(lambda m, i, o: seen.__setitem__("h", o.detach().clone()))
    watch = Watch(model, opt, every=10)
    _step(model, opt, torch.randn(64, 12), torch.randint(0, 5, (64,)))
    watch.step()
    watch.flush()
    row = next(r for r in watch.samples[0]["layers"] if r["name"] == "1")
    assert row["kind"] == "maxout" and row["dead"] is None  # only plain ReLU units can die
    assert row["std"] == pytest.approx(seen["h"].std().item(), rel=1e-5)
    assert row["zero"] == pytest.approx((seen["h"] <= 0).float().mean().item(), abs=1e-7)
    order = Watch._module_order(model)
    assert order == [["0.linear", "weights"], ["0", "maxout"], ["1.linear", "weights"], ["1", "maxout"],
                     ["2", "weights"]]
    assert RunView(order=order).feeding_weights() == {"0": "0.linear.weight", "1": "1.linear.weight"}


def test_long_layer_names_keep_their_columns():
    from babysit.doctor import Finding
    from babysit.watch.table import format_table

    long = "encoder.blocks.11.attention.proj"
    rows = [{"layer": long, "kind": "tanh", "mean": 0.1, "std": 0.6, "saturation_pct": 2.0, "dead_pct": 0.0,
             "grad_std": 1e-3, "weight": long + ".weight", "grad_data": 1e-2, "update_data": -3.1},
            {"layer": "act1", "kind": "relu", "mean": 0.1, "std": 0.6, "saturation_pct": None, "dead_pct": 1.0,
             "grad_std": 1e-3, "weight": "fc1.weight", "grad_data": 1e-2, "update_data": -3.0}]
    lines = format_table(rows, 100).splitlines()
    starts = [line.index("-3.") for line in lines[3:]]
    assert len(set(starts)) == 1 and f"{long} " in lines[3]  # aligned, and the name is not glued to the next
    found = [Finding("update-ratio-high", "warning", long + ".weight", {}, "Each step changes it a lot."),
             Finding("dead-units", "warning", "act1", {}, "Units died.")]
    printed = [f.line(max(len(g.where) for g in found)) for f in found]
    assert printed[0].index("Each") == printed[1].index("Units") and ".weight Each" in printed[0]
