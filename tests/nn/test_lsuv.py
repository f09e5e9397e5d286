import pytest
import torch
from torch import nn

from babysit.nn.blocks import DropConnectLinear, Maxout
from babysit.nn.lsuv import lsuv_

DEPTH, WIDTH = 10, 256  # L6's init experiment (10 x 500 tanh units), narrowed to keep it fast


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These matmuls are too small to gain from threads; on a busy machine they lose ~10x spinning."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tanh_mlp(std=None):
    layers = []
    for _ in range(DEPTH):
        layers += [nn.Linear(WIDTH, WIDTH), nn.Tanh()]
    model = nn.Sequential(*layers)
    if std is not None:
        with torch.no_grad():
            for m in model:
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0.0, std)
                    m.bias.zero_()
    return model


def measured_stds(model, x, kinds=(nn.Linear, nn.Conv2d)):
    """Output std of every layer, with hooks of our own (independent from lsuv_'s)."""
    stds, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, kinds):
            def hook(_m, _i, out, name=name):
                stds[name] = out.std().item()
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return stds


def all_hooks_gone(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_small_init_collapses_and_lsuv_fixes_it():
    torch.manual_seed(0)
    x = torch.randn(512, WIDTH)
    collapsed = measured_stds(tanh_mlp(std=0.01), x)
    assert collapsed["18"] < 1e-3  # the last layer: L6's collapse to 0
    assert collapsed["0"] > collapsed["8"] > collapsed["18"]

    model = tanh_mlp(std=0.01)
    returned = lsuv_(model, x, tol=0.05)
    after = measured_stds(model, x)
    assert len(after) == DEPTH
    for name, std in after.items():
        assert abs(std - 1.0) < 0.05, (name, std)
    assert list(returned) == [str(2 * i) for i in range(DEPTH)]  # forward order
    assert returned == pytest.approx(after, abs=1e-5)
    # it generalizes beyond the batch it was fit on
    fresh = measured_stds(model, torch.randn(512, WIDTH))
    assert all(abs(s - 1.0) < 0.1 for s in fresh.values()), fresh


def test_weights_are_scaled_orthogonal_and_biases_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 48))
    lsuv_(model, torch.randn(128, 32))
    for m in model:
        if isinstance(m, nn.Linear):
            w = m.weight if m.out_features <= m.in_features else m.weight.T  # orthonormal rows or columns
            gram = w @ w.T
            c = gram.diagonal().mean()
            torch.testing.assert_close(gram / c, torch.eye(len(w)), atol=1e-4, rtol=0)
            assert torch.count_nonzero(m.bias) == 0


def test_conv_maxout_dropconnect_are_initialized_and_mode_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Dropout(0.5), Maxout(8 * 6 * 6, 32, pieces=3),
                          DropConnectLinear(32, 10, p=0.5))
    model.train()
    model[3].eval()  # mixed modes must come back exactly as they were
    before = {n: m.training for n, m in model.named_modules()}
    x = torch.randn(128, 3, 6, 6)
    returned = lsuv_(model, x, tol=0.02)
    assert list(returned) == ["0", "4.linear", "5"]
    assert {n: m.training for n, m in model.named_modules()} == before
    model.eval()  # measure without dropout / DropConnect noise
    after = measured_stds(model, x)
    assert set(after) == set(returned)
    assert all(abs(s - 1.0) < 0.02 for s in after.values()), after
    assert all_hooks_gone(model)


def test_no_hooks_left_even_when_it_fails():
    model = tanh_mlp()
    lsuv_(model, torch.randn(64, WIDTH))
    assert all_hooks_gone(model)
    model.eval()
    with pytest.raises(ValueError, match="layer '0' has output std 0.0"):
        lsuv_(model, torch.zeros(64, WIDTH))  # constant batch, zero bias: nothing to rescale
    assert all_hooks_gone(model)
    assert not any(m.training for m in model.modules())


def test_model_without_layers_raises():
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d layer.*Sequential"):
        lsuv_(nn.Sequential(nn.Tanh(), nn.ReLU()), torch.randn(4, 3))


@pytest.mark.parametrize("kwargs, match", [({"tol": 0}, "tol must be a positive number, got 0"),
                                            ({"max_iters": 0}, "max_iters must be an int >= 1, got 0")])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lsuv_(nn.Linear(3, 3), torch.randn(4, 3), **kwargs)


def test_bare_layer_as_model():
    torch.manual_seed(0)
    stds = lsuv_(nn.Linear(16, 8), torch.randn(100, 16) * 5)
    assert list(stds) == ["<model>"] and abs(stds["<model>"] - 1) < 0.05
