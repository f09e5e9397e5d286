"""babysit.gradcheck: stock and babysit modules pass; a deliberately wrong backward fails."""
import pytest
import torch
from torch import nn

from babysit.nn import DropConnectLinear, Maxout
from babysit.preflight import gradcheck
from babysit.preflight.gradcheck import verdict
from planted import WrongTanh


class WrongLayer(nn.Linear):
    def forward(self, x):
        return WrongTanh.apply(super().forward(x))


class RightLayer(nn.Linear):
    def forward(self, x):
        return torch.tanh(super().forward(x))


@pytest.mark.parametrize("seed", range(5))
def test_a_correct_module_is_fine_to_1e_7(seed):
    torch.manual_seed(seed)
    report = gradcheck(RightLayer(5, 4), torch.randn(6, 5))
    assert report.ok, str(report)
    assert report.worst().max_rel_error < 1e-7
    assert [t.name for t in report.tensors] == ["input 0", "weight", "bias"]


@pytest.mark.parametrize("seed", range(5))
def test_a_wrong_backward_is_caught_and_named(seed):
    torch.manual_seed(seed)
    report = gradcheck(WrongLayer(5, 4), torch.randn(6, 5))
    assert not report.ok
    assert report.worst().max_rel_error > 1e-2
    assert {t.name: t.verdict for t in report.tensors}["weight"] == "wrong"
    assert "FAILED" in str(report)


@pytest.mark.parametrize("module", [Maxout(6, 4, pieces=3), DropConnectLinear(6, 4, p=0.5)],
                         ids=["maxout", "dropconnect"])
def test_babysit_blocks_pass(module):
    torch.manual_seed(0)
    report = gradcheck(module, torch.randn(7, 6))
    assert report.ok, str(report)


def test_the_original_module_is_untouched():
    layer = RightLayer(3, 2)
    before = layer.weight.detach().clone()
    gradcheck(layer, torch.randn(4, 3))
    assert layer.weight.dtype == torch.float32 and torch.equal(layer.weight, before) and layer.training


def test_verdict_thresholds_are_the_lectures():
    assert verdict(1e-8) == "fine" and verdict(1e-5) == "suspicious" and verdict(1e-5, kinks=True) == "fine (kinks)"
    assert verdict(1e-3) == "wrong" and verdict(1e-3, kinks=True) == "suspicious" and verdict(0.5) == "wrong"


def test_no_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one input"):
        gradcheck(nn.Linear(2, 2))
