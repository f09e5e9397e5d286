"""One planted bug per check, each beside its fixed counterpart (issue: Preflight, item 1)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit.preflight.checks import check_data
from babysit.preflight.lr_find import check_lr_range
from babysit.preflight.module_gradcheck import check_gradients
from babysit.preflight.regularization import check_regularization
from babysit.preflight.setup import setup_from_spec, setup_from_user
from babysit.spec import load_spec
from babysit.penalties import REGULARIZERS, l2
from planted import WrongTanh


def _blobs(n=200, classes=4, dim=6, seed=0):
    """Linearly separable Gaussian blobs: a task any working setup fits."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 3
    y = torch.randint(classes, (n,), generator=g)
    return centres[y] + torch.randn(n, dim, generator=g), y


class MyTanh(nn.Module):
    def __init__(self, wrong: bool):
        super().__init__()
        self.wrong = wrong

    def forward(self, x):
        return WrongTanh.apply(x) if self.wrong else torch.tanh(x)


def _net(wrong: bool):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), MyTanh(wrong), nn.Linear(16, 4))


def test_a_module_with_a_wrong_backward_fails_the_gradient_check_and_the_fixed_one_passes():
    x, y = _blobs()
    bad = check_gradients(setup_from_user(_net(wrong=True), F.cross_entropy, (x, y)))
    assert bad.status == "fail" and "1" in bad.advice and "backward" in bad.advice
    assert "input 0: wrong" in bad.measured["1"]  # located: module "1", its input gradient
    good = check_gradients(setup_from_user(_net(wrong=False), F.cross_entropy, (x, y)))
    assert good.status == "pass" and "fine" in good.measured["1"]


def test_labels_out_of_range_fail_the_data_check_and_in_range_pass():
    x, y = _blobs()
    model = _net(wrong=False)  # 4 outputs
    bad_y = y.clone()
    bad_y[:5] = 4  # class 4 does not exist
    bad = check_data(setup_from_user(model, F.cross_entropy, (x, bad_y)))
    assert bad.status == "fail" and bad.measured["labels_out_of_range"] == 5 and bad.measured["label_max"] == 4
    assert "outside [0, 4)" in bad.advice
    assert check_data(setup_from_user(model, F.cross_entropy, (x, y))).status == "pass"


def test_a_class_absent_from_train_is_a_warning():
    x, y = _blobs()
    keep = y != 3  # the model has 4 outputs; class 3 never occurs
    result = check_data(setup_from_user(_net(wrong=False), F.cross_entropy, (x[keep], y[keep])))
    assert result.status == "warn" and result.measured["classes_present"] == 3
    assert "1 classes have no training example" in result.advice


def _detached_l2(model):
    return l2(model).detach()  # planted: the term can no longer move the weights


def _forgotten_l2(model):
    l2(model)  # planted: computed, then a zero goes into the loss
    return torch.zeros((), device=next(model.parameters()).device)


@pytest.fixture
def planted_regularizers():
    REGULARIZERS.register("detached", _detached_l2)
    REGULARIZERS.register("forgotten", _forgotten_l2)
    yield
    for name in ("detached", "forgotten"):
        REGULARIZERS.unregister(name)


@pytest.mark.parametrize("name,status,says", [("forgotten", "fail", "does not reach the loss"),
                                              ("detached", "fail", "detached from the graph"),
                                              ("l2", "pass", "")])
def test_a_spec_whose_regularization_is_disconnected_fails_check_3(planted_regularizers, name, status, says):
    spec = load_spec("digits-mlp", [f"train.regularizer={{name: {name}, strength: 0.001}}",
                                    "optim.weight_decay=0"])
    result = check_regularization(setup_from_spec(spec))
    assert result.status == status, result
    assert says in result.advice
    if status == "pass":  # 10x the strength: the loss rises by 9x the term (strength 1e-3 on sizeable weights)
        assert result.measured["relative_rise"] > 0.1 and result.measured["gradient_change"] > 0


def test_weight_decay_on_an_empty_group_fails_and_real_decay_passes():
    """Weight decay lives in the optimizer, so check 3 looks where it acts: the weights."""
    x, y = _blobs()
    model = _net(wrong=False)
    disconnected = lambda m: torch.optim.SGD([{"params": [], "weight_decay": 0.1},  # noqa: E731
                                              {"params": list(m.parameters())}], lr=0.1)
    connected = lambda m: torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=0.1)  # noqa: E731
    bad = check_regularization(setup_from_user(model, F.cross_entropy, (x, y), optimizer=disconnected))
    assert bad.status == "fail" and "holds no weights" in bad.advice
    good = check_regularization(setup_from_user(model, F.cross_entropy, (x, y), optimizer=connected))
    assert good.status == "pass" and good.measured["weight_norm2_at_10x"] < good.measured["weight_norm2"]


def test_no_regularization_is_a_skip_that_says_how_to_add_some():
    x, y = _blobs()
    result = check_regularization(setup_from_user(_net(False), F.cross_entropy, (x, y)))
    assert result.status == "skip" and "train.regularizer" in result.advice


def test_lr_range_check_fails_an_lr_that_blows_up_and_passes_one_in_the_falling_range(tiny_names_spec):
    for lr, status in ((10.0, "fail"), (0.1, "pass"), (1e-6, "warn")):
        result = check_lr_range(setup_from_spec(tiny_names_spec(f"optim.lr={lr}")))
        assert result.status == status, (lr, result)
    assert result.measured["falling_from"] > 1e-6 and "below the falling range" in result.advice


def test_preflight_library_path_runs_the_whole_checklist_on_a_users_model():
    x, y = _blobs()
    model = _net(wrong=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]
    results = babysit.preflight(model, F.cross_entropy, (x, y), optimizer=opt,
                                regularizer=l2, reg_strength=1e-3)
    statuses = {r.name: r.status for r in results}
    assert list(statuses) == ["data", "initial-loss", "regularization", "gradcheck", "overfit-tiny", "lr-range"]
    assert statuses["gradcheck"] == "fail" and not results.ok
    assert statuses["data"] == "pass" and statuses["regularization"] == "pass"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # checks train copies only
    assert "FAIL  gradcheck" in str(results)


def test_preflight_rejects_malformed_input_with_the_reason():
    model = _net(False)
    with pytest.raises(ValueError, match="train_data: 3 inputs but 2 labels"):
        babysit.preflight(model, F.cross_entropy, (torch.randn(3, 6), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        babysit.preflight(model, F.cross_entropy, (torch.randn(3, 6), torch.zeros(3)))
    with pytest.raises(ValueError, match="must be \\(inputs, labels\\) tensors"):
        babysit.preflight(model, F.cross_entropy, [1, 2, 3])
