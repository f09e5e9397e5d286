"""The blocks of LECTURES.md §1 selected from a spec: Maxout and DropConnect hidden layers,
orthogonal init and LSUV; each builds, learns, is deterministic in eval and passes gradcheck."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit.data import build_data
from babysit.models import build_model, lsuv_batch
from babysit.nn.blocks import DropConnectLinear, Maxout, StochasticDepth
from babysit.activations import gain
from babysit.spec import load_spec
from babysit.train.trainer import build_start

LSUV_TOL = 0.05  # lsuv_'s default tolerance on |std - 1|

VARIANTS = {
    "maxout": ["model.layer=maxout", "model.maxout_pieces=3"],
    "dropconnect": ["model.layer=dropconnect", "model.dropconnect_p=0.3"],
    "orthogonal": ["model.init.hidden.weight=orthogonal"],
    "lsuv": ["model.init.lsuv=true"],
}


@pytest.fixture(scope="module")
def digits():
    return build_data(load_spec("digits-mlp").data)


def _fixed_batch_losses(model, data, device, steps=40):
    """Eval-mode loss on a fixed batch before and after `steps` Adam steps in train mode."""
    x, y = data.train.x[:128].to(device), data.train.y[:128].to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            loss = F.cross_entropy(model(x), y).item()
        model.train()
        return loss

    before = eval_loss()
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, eval_loss()


@pytest.mark.parametrize("preset", ["digits-mlp", "digits-cnn"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_block_builds_from_a_spec_and_learns(variant, preset, digits, device):
    spec = load_spec(preset, VARIANTS[variant])
    _, _, model = build_start(spec, digits)
    before, after = _fixed_batch_losses(model, digits, device)
    assert after < 0.5 * before, f"{variant} on {preset}: loss {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_eval_mode_is_deterministic(variant, digits, device):
    _, _, model = build_start(load_spec("digits-mlp", VARIANTS[variant]), digits)
    x = digits.val.x[:64].to(device)
    model.train()
    with torch.no_grad():
        if variant == "dropconnect":  # noisy in training...
            assert not torch.equal(model(x), model(x))
        model.eval()  # ...but not in eval
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_layer_kinds_in_the_built_model(digits):
    m = build_model(load_spec("digits-mlp", VARIANTS["maxout"]), digits)
    assert isinstance(m.fc1, Maxout) and m.fc1.pieces == 3 and isinstance(m.fc2, Maxout)
    assert not hasattr(m, "act1")  # the max over pieces is the nonlinearity
    assert type(m.out) is nn.Linear
    d = build_model(load_spec("digits-mlp", VARIANTS["dropconnect"]), digits)
    assert isinstance(d.fc1, DropConnectLinear) and d.fc1.p == 0.3 and isinstance(d.act1, nn.ReLU)
    cnn = build_model(load_spec("digits-cnn", VARIANTS["maxout"]), digits)
    assert isinstance(cnn.fc3, Maxout) and isinstance(cnn.conv1, nn.Conv2d)  # fc layers only
    with pytest.raises(babysit.SpecError, match="model.layer: Input should be 'linear', 'maxout' or 'dropconnect'"):
        load_spec("digits-mlp", ["model.layer=maxot"])
    with pytest.raises(babysit.SpecError, match="model.maxout_pieces: Input should be greater than or equal to 2"):
        load_spec("digits-mlp", ["model.layer=maxout", "model.maxout_pieces=1"])


def test_orthogonal_init_has_orthogonal_columns_times_the_gain(digits):
    m = build_model(load_spec("digits-mlp", VARIANTS["orthogonal"]), digits)
    w = m.fc1.weight  # 128 x 64: orthonormal columns, scaled by ReLU's gain
    torch.testing.assert_close(w.T @ w, gain("relu") ** 2 * torch.eye(64), atol=1e-4, rtol=0)


def test_lsuv_gives_unit_output_std_and_is_seeded(digits, device):
    spec = load_spec("digits-mlp", VARIANTS["lsuv"])
    _, _, model = build_start(spec, digits)
    outputs = {}
    hooks = [getattr(model, n).register_forward_hook(lambda _m, _i, o, n=n: outputs.__setitem__(n, o))
             for n in ("fc1", "fc2", "out")]
    model.eval()
    with torch.no_grad():
        model(lsuv_batch(spec, digits).to(device))
    for h in hooks:
        h.remove()
    for name, out in outputs.items():
        assert abs(out.std().item() - 1.0) < LSUV_TOL, name
    _, _, again = build_start(spec, digits)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    _, _, other = build_start(load_spec("digits-mlp", [*VARIANTS["lsuv"], "seed=1"]), digits)
    assert not torch.equal(other.fc1.weight, model.fc1.weight)
    _, _, plain = build_start(load_spec("digits-mlp"), digits)
    assert abs(plain.out.weight.std().item() - model.out.weight.std().item()) > 1e-3  # LSUV did run


@pytest.mark.parametrize("make", [
    lambda: Maxout(5, 3, pieces=3),
    lambda: DropConnectLinear(5, 3, p=0.4),
    lambda: StochasticDepth(nn.Sequential(nn.Linear(5, 5), nn.Tanh()), p=0.3),
], ids=["maxout", "dropconnect", "stochastic_depth"])
def test_babysit_gradcheck_passes_and_eval_is_deterministic_for_every_new_module(make):
    torch.manual_seed(0)
    module, x = make(), torch.randn(6, 5)
    report = babysit.gradcheck(module, x)
    assert report.ok, str(report)
    assert len(report.tensors) >= 3  # the input and the parameters were all checked
    module.eval()
    torch.testing.assert_close(module(x), module(x), rtol=0, atol=0)  # eval: deterministic
