"""model.pool: fractional (L7's fractional max pooling): random layouts while training, one fixed
layout in eval so evaluation is deterministic."""
import pytest
import torch

from babysit.data import build_data
from babysit.errors import SpecError
from babysit.models import build_model
from babysit.nn.blocks import FractionalMaxPool2d
from babysit.spec import load_spec
from babysit.train.evaluate import evaluate


@pytest.fixture(scope="module")
def digits():
    return build_data(load_spec("digits-cnn").data)


def test_layouts_are_random_in_training_and_fixed_in_eval():
    torch.manual_seed(0)
    pool = FractionalMaxPool2d(2 ** -0.5)
    x = torch.randn(6, 3, 8, 8)
    assert pool(x).shape == (6, 3, 5, 5)  # int(8 / sqrt(2)) = 5
    assert not torch.equal(pool(x), pool(x))  # a new layout per training forward
    pool.eval()
    assert torch.equal(pool(x), pool(x))
    # the fixed layout does not depend on the batch: each example pools the same alone as in a batch
    assert torch.equal(pool(x[2:3]), pool(x)[2:3])
    assert torch.equal(pool(x[2]), pool(x)[2])  # an unbatched (C, H, W) input too
    # torch's own module draws a new layout in eval as well: the reason for the subclass
    torch_pool = torch.nn.FractionalMaxPool2d(2, output_ratio=2 ** -0.5).eval()
    assert not torch.equal(torch_pool(x), torch_pool(x))


def test_output_ratio_is_checked():
    with pytest.raises(ValueError, match="output_ratio"):
        FractionalMaxPool2d(1.0)


def test_spec_builds_fractional_pooling_with_its_ratio(digits):
    model = build_model(load_spec("digits-cnn", ["model.pool=fractional", "model.pool_ratio=0.6"]), digits)
    assert isinstance(model.pool1, FractionalMaxPool2d) and model.pool1.output_ratio == (0.6, 0.6)
    # 8x8 -> int(8 * 0.6) = 4 -> int(4 * 0.6) = 2: the head sees 32 channels x 2 x 2
    assert model.fc3.in_features == 32 * 2 * 2
    assert model(digits.train.x[:5]).shape == (5, 10)
    default = build_model(load_spec("digits-cnn", ["model.pool=fractional"]), digits)
    assert default.pool1.output_ratio == pytest.approx((2 ** -0.5, 2 ** -0.5))
    assert default.fc3.in_features == 32 * 3 * 3  # 8 -> 5 -> 3


def test_evaluation_is_deterministic(digits):
    model = build_model(load_spec("digits-cnn", ["model.pool=fractional"]), digits)
    first, second = evaluate(model, digits.val), evaluate(model, digits.val)
    assert first["loss"] == second["loss"] and first["acc"] == second["acc"]
    model.train()
    x = digits.val.x[:32]
    assert not torch.equal(model(x), model(x))  # training still samples


def test_pool_ratio_without_fractional_pooling_is_refused():
    with pytest.raises(SpecError, match="model.pool_ratio is only used with model.pool: fractional"):
        load_spec("digits-cnn", ["model.pool_ratio=0.5"])
    with pytest.raises(SpecError, match="pool_ratio"):
        load_spec("digits-cnn", ["model.pool=fractional", "model.pool_ratio=1.5"])
