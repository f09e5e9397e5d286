import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call

from babysit.nn.blocks import DropConnectLinear, Maxout, StochasticDepth


# ---------------------------------------------------------------- Maxout

def test_maxout_shape_keeps_leading_dims():
    m = Maxout(5, 3, pieces=4)
    assert m(torch.randn(7, 5)).shape == (7, 3)
    assert m(torch.randn(2, 6, 5)).shape == (2, 6, 3)


def test_maxout_is_max_of_explicit_pieces():
    torch.manual_seed(0)
    out, k = 3, 4  # out != pieces, so a transposed (pieces, out) layout cannot pass
    m = Maxout(5, out, pieces=k)
    x = torch.randn(10, 5)
    w, b = m.linear.weight, m.linear.bias
    expected = torch.empty(10, out)
    for o in range(out):
        pieces = [x @ w[o * k + j] + b[o * k + j] for j in range(k)]
        expected[:, o] = torch.stack(pieces).max(dim=0).values
    torch.testing.assert_close(m(x), expected)
    # not trivially one piece: different pieces win for different examples
    assert m.linear(x).view(10, out, k).argmax(-1).unique().numel() > 1


@pytest.mark.parametrize("pieces", [2, 3, 5])
def test_maxout_has_pieces_times_linear_parameters(pieces):
    n = sum(p.numel() for p in Maxout(6, 4, pieces=pieces).parameters())
    assert n == pieces * sum(p.numel() for p in nn.Linear(6, 4).parameters()) == pieces * (6 * 4 + 4)


def test_maxout_gradcheck_float64():
    torch.manual_seed(1)
    m = Maxout(4, 3, pieces=2).double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    z = m.linear(x).view(5, 3, 2)
    assert (z[..., 0] - z[..., 1]).abs().min() > 1e-3  # no near-ties for gradcheck's eps to cross
    params = {"linear.weight": m.linear.weight.detach().clone().requires_grad_(),
              "linear.bias": m.linear.bias.detach().clone().requires_grad_()}
    fn = lambda x, w, b: functional_call(m, {"linear.weight": w, "linear.bias": b}, (x,))
    assert gradcheck(fn, (x, params["linear.weight"], params["linear.bias"]))


@pytest.mark.parametrize("kwargs, match", [({"pieces": 1}, "pieces must be an int >= 2.*got 1"),
                                            ({"pieces": 2.0}, "got 2.0"),
                                            ({"in_features": 0}, "in_features must be a positive int, got 0"),
                                            ({"out_features": -3}, "out_features .* got -3")])
def test_maxout_rejects_bad_sizes(kwargs, match):
    args = {"in_features": 4, "out_features": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        Maxout(**args)


# ---------------------------------------------------------------- DropConnectLinear

def test_dropconnect_eval_is_plain_linear_and_deterministic():
    torch.manual_seed(0)
    layer = DropConnectLinear(6, 4, p=0.5).eval()
    x = torch.randn(8, 6)
    y1, y2 = layer(x), layer(x)
    assert torch.equal(y1, F.linear(x, layer.weight, layer.bias))
    assert torch.equal(y1, y2)
    assert layer.last_mask is None


def test_dropconnect_inits_like_linear():
    torch.manual_seed(3)
    a = DropConnectLinear(7, 5)
    torch.manual_seed(3)
    b = nn.Linear(7, 5)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_dropconnect_train_is_random_and_uses_its_mask():
    torch.manual_seed(0)
    layer = DropConnectLinear(6, 4, p=0.5).train()
    x = torch.randn(8, 6)
    y1 = layer(x)
    m1 = layer.last_mask.clone()
    y2 = layer(x)
    assert not torch.equal(y1, y2)
    assert not torch.equal(m1, layer.last_mask)  # a fresh mask per call
    # the output is the linear map with the masked, inverted-scaled weight
    torch.testing.assert_close(y2, F.linear(x, layer.weight * layer.last_mask / 0.5, layer.bias))


def test_dropconnect_mask_drops_share_p_of_weights():
    torch.manual_seed(0)
    layer = DropConnectLinear(100, 100, p=0.3).train()
    layer(torch.randn(2, 100))
    mask = layer.last_mask
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert abs(mask.eq(0).float().mean().item() - 0.3) < 0.02  # 10k weights: sd of the share ~0.005


def test_dropconnect_train_mean_approaches_eval():
    torch.manual_seed(0)
    layer = DropConnectLinear(8, 3, p=0.5, bias=False)
    with torch.no_grad():  # positive weights and inputs: no cancellation hides a scaling error
        layer.weight.uniform_(0.5, 1.5)
    x = torch.rand(1, 8) + 0.5
    expected = layer.eval()(x)
    layer.train()
    with torch.no_grad():
        mean = torch.stack([layer(x) for _ in range(2000)]).mean(0)
    torch.testing.assert_close(mean, expected, rtol=0.03, atol=0.0)
    # without the 1/(1-p) scaling the mean would be half of eval: far outside that tolerance
    assert not torch.allclose(mean * 0.5, expected, rtol=0.03)


def test_dropconnect_never_drops_bias():
    torch.manual_seed(0)
    layer = DropConnectLinear(2, 3, p=0.95).train()
    x = torch.randn(4, 2)
    outs = [layer(x) for _ in range(200)]
    only_bias = sum(torch.equal(y, layer.bias.expand(4, 3)) for y in outs)
    assert only_bias > 100  # all 6 weights dropped w.p. 0.95**6 ~ 0.74


def test_dropconnect_gradcheck_with_fixed_mask():
    layer = DropConnectLinear(4, 3, p=0.4).double().train()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()

    def fn(x, w, b):
        torch.manual_seed(7)  # same mask on every call gradcheck makes
        return functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert gradcheck(fn, (x, w, b))
    fn(x, w, b)
    assert 0 < layer.last_mask.sum() < layer.last_mask.numel()  # the checked map really was masked


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), "0.5"])
def test_dropconnect_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"0 <= p < 1, got"):
        DropConnectLinear(3, 2, p=p)


# ---------------------------------------------------------------- StochasticDepth

def _branch(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 4), nn.Tanh()).to(dtype)


def test_stochastic_depth_eval_is_residual():
    sd = StochasticDepth(_branch(), p=0.5).eval()
    x = torch.randn(6, 4)
    assert torch.equal(sd(x), x + sd.block(x))


def test_stochastic_depth_p_near_one_mostly_skips():
    torch.manual_seed(0)
    sd = StochasticDepth(_branch(), p=0.99).train()
    x = torch.randn(6, 4)
    skipped = sum(torch.equal(sd(x), x) for _ in range(500))
    assert skipped >= 480  # expected 495


def test_stochastic_depth_expectation_matches_eval():
    torch.manual_seed(0)
    sd = StochasticDepth(_branch(), p=0.3)
    x = torch.randn(6, 4)
    expected = sd.eval()(x)
    sd.train()
    with torch.no_grad():
        outs = torch.stack([sd(x) for _ in range(4000)])
    kept = (outs != x).any(-1).any(-1).float().mean().item()
    assert abs(kept - 0.7) < 0.03
    branch = expected - x
    torch.testing.assert_close(outs.mean(0) - x, branch, rtol=0.05, atol=1e-6)


def test_stochastic_depth_p_zero_train_equals_eval():
    sd = StochasticDepth(_branch(), p=0.0)
    x = torch.randn(6, 4)
    assert torch.equal(sd.train()(x), sd.eval()(x))


@pytest.mark.parametrize("training", [False, True])
def test_stochastic_depth_gradcheck(training):
    sd = StochasticDepth(_branch(dtype=torch.float64), p=0.2).train(training)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def fn(x):
        torch.manual_seed(1)  # torch.rand(()) = 0.757 > p: the branch runs, scaled by 1/0.8
        return sd(x)

    assert gradcheck(fn, (x,))
    if training:
        with torch.no_grad():
            torch.testing.assert_close(fn(x), x + sd.block(x) / 0.8)


def test_stochastic_depth_validates():
    with pytest.raises(ValueError, match="0 <= p < 1, got 1"):
        StochasticDepth(nn.Identity(), p=1)
    with pytest.raises(ValueError, match="block must be an nn.Module.*got function"):
        StochasticDepth(lambda x: x)
