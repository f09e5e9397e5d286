"""Models and init schemes against the numbers of LECTURES.md §1 and §5."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit.data import build_data
from babysit.models import build_model
from babysit.activations import CHOICES, gain
from babysit.spec import load_spec

LN27 = math.log(27)  # 3.29: diffuse softmax over 27 characters (LECTURES.md §2)


@pytest.fixture(scope="module")
def names():
    return build_data(load_spec("makemore-bn").data)


@pytest.fixture(scope="module")
def digits():
    return build_data(load_spec("digits-cnn").data)


def _first_loss(preset, data):
    torch.manual_seed(0)
    model = build_model(load_spec(preset), data)
    x, y = data.train.x[:4096], data.train.y[:4096]
    model.train()
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def test_original_init_is_confidently_wrong_and_the_fix_is_diffuse(names):
    # MM3: the first net starts near 27 instead of ln 27; scaling W2 by 0.01 gives ~3.29.
    assert _first_loss("makemore-original", names) > 5 * LN27
    assert _first_loss("makemore-fix-softmax", names) == pytest.approx(LN27, abs=0.25)
    assert _first_loss("makemore-bn", names) == pytest.approx(LN27, abs=0.05)


def test_kaiming_uses_the_tanh_gain_over_sqrt_fan_in(names):
    torch.manual_seed(0)
    model = build_model(load_spec("makemore-kaiming"), names)
    expected = (5 / 3) / math.sqrt(30)  # LECTURES.md §5 row 4: W1 x (5/3)/sqrt(30)
    assert model.fc1.weight.std().item() == pytest.approx(expected, rel=0.03)
    assert model.fc1.bias.std().item() == pytest.approx(0.01, rel=0.2)
    assert model.out.weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert model.out.bias.abs().max().item() == 0.0


def test_batchnorm_net_has_no_bias_before_the_norm(names):
    model = build_model(load_spec("makemore-bn"), names)
    assert model.fc1.bias is None
    assert model.bn1.momentum == 0.001


def test_deep_net_matches_the_mm3_architecture(names):
    model = build_model(load_spec("makemore-deep"), names)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == \
        [(30, 100)] + [(100, 100)] * 4 + [(100, 27)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model) == 6
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(47_000, rel=0.02)  # "~47k"
    assert torch.allclose(model.out_bn.weight, torch.full((27,), 0.1))  # MM3: gamma x 0.1


@pytest.mark.parametrize("activation", CHOICES)
def test_every_activation_builds_and_auto_init_uses_its_gain(activation, digits):
    spec = load_spec("digits-mlp", [f"model.activation={activation}", "model.hidden=[400]"])
    torch.manual_seed(0)
    model = build_model(spec, digits)
    assert model.fc1.weight.std().item() == pytest.approx(gain(activation) / 8.0, rel=0.03)  # fan_in 64
    assert model(digits.train.x[:5]).shape == (5, 10)


def test_gains_are_the_lectures():
    assert gain("tanh") == pytest.approx(5 / 3) and gain("relu") == pytest.approx(math.sqrt(2))
    assert gain("linear") == 1.0


@pytest.mark.parametrize("scheme, std", [("zeros", 0.0), ("normal", 0.05), ("xavier", 1 / 8.0)])
def test_other_init_schemes(scheme, std, digits):
    spec = load_spec("digits-mlp", [f"model.init.hidden.weight={scheme}", "model.init.hidden.std=0.05",
                                    "model.hidden=[400]"])
    model = build_model(spec, digits)
    assert model.fc1.weight.std().item() == pytest.approx(std, rel=0.03, abs=1e-7)


def test_cnn_on_digits_shapes_and_centering(digits):
    model = build_model(load_spec("digits-cnn"), digits)
    assert model(digits.train.x[:7]).shape == (7, 10)
    names = [n for n, _ in model.named_children()]
    assert names[:5] == ["prep", "conv1", "bn1", "act1", "pool1"]
    # preprocessing was fit on the train split: the centred train mean is zero
    assert model.prep(digits.train.x).mean(0).abs().max().item() < 1e-5
    assert model.prep.mean.shape == (1, 8, 8)


def test_dropout_is_on_in_train_and_off_in_eval(digits):
    spec = load_spec("digits-mlp", ["model.dropout=0.5"])
    model = build_model(spec, digits)
    x = digits.val.x[:16]
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
