"""One registry type for every plug-in family: duplicates refused, unknown names echoed with the
valid ones, an explicit order; and a user's own rule and check registered the README's way."""
from typing import get_args

import pytest
import torch

import babysit
from babysit.activations import ACTIVATIONS, CHOICES
from babysit.data.augment import OPS
from babysit.doctor import RULES, Finding, RunView, rule
from babysit.errors import UnknownName
from babysit.preflight import CHECKS, CheckResult, check, preflight
from babysit.registry import Registry
from babysit.spec import OptimSpec, ScheduleSpec
from babysit.train.optim import OPTIMIZERS, SCHEDULES


def test_a_taken_name_is_refused_and_an_unknown_one_lists_the_valid_names():
    r = Registry("widget")
    r.register("b", 2)
    r.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        r.register("a", 3)
    with pytest.raises(UnknownName, match="unknown widget 'c'; valid: b, a"):
        r["c"]
    assert list(r) == ["b", "a"] and r["a"] == 1  # registration order unless told


def test_an_explicit_order_comes_first():
    r = Registry("widget")
    r.register("late", 1)
    r.register("early", 2, order=1)
    assert list(r) == ["early", "late"]
    assert r.unregister("early") == 2 and list(r) == ["late"]


def test_the_shipped_families_keep_their_order():
    assert list(CHECKS) == ["data", "initial-loss", "regularization", "gradcheck", "overfit-tiny", "lr-range"]
    # the order findings of one severity come out in, and a repair round's tie-break
    assert list(RULES)[:3] == ["saturated-activations", "dead-units", "activations-collapse"]
    assert list(RULES)[-5:] == ["bias-before-norm", "batchnorm-small-batch",  # structure, then the user's loop
                                "activation-before-loss", "log-of-softmax", "grads-not-zeroed"]
    # every name the spec accepts has its builder
    assert set(OPTIMIZERS) == set(get_args(OptimSpec.model_fields["name"].annotation))
    assert set(SCHEDULES) == set(get_args(ScheduleSpec.model_fields["name"].annotation))
    assert set(OPS) == {"hflip", "crop", "resized_crop", "jitter", "pca_color", "shift1d", "scale1d", "noise1d"}


def test_the_spec_takes_its_activation_names_from_the_table():
    assert set(CHOICES) == {n for n, a in ACTIVATIONS.items() if a.module is not None and a.hidden}
    assert "maxout" in ACTIVATIONS and "maxout" not in CHOICES  # watched, not a model.activation
    assert "softmax" in ACTIVATIONS and "softmax" not in CHOICES  # recorded, not a hidden unit
    with pytest.raises(babysit.SpecError, match="model.activation"):
        babysit.load_spec("digits-mlp", ["model.activation=swish"])


@pytest.fixture
def own_rule_and_check():
    """The README's example: a rule and a check of a user's own."""
    @rule("first-lr-is-the-peak")
    def first_lr_is_the_peak(view):
        if len(view.lrs) > 1 and view.lrs[0] > view.lrs[-1]:
            return [Finding("first-lr-is-the-peak", "info", None, {"first_lr": view.lrs[0]},
                            "The lr only falls: try a warm-up (schedule.warmup_steps).")]
        return []

    @check("batch-multiple-of-8")
    def batch_multiple_of_8(setup):
        status = "pass" if setup.batch_size % 8 == 0 else "warn"
        return CheckResult("batch-multiple-of-8", status, {"batch_size": setup.batch_size}, "a multiple of 8")

    yield
    RULES.unregister("first-lr-is-the-peak")
    CHECKS.unregister("batch-multiple-of-8")


def test_a_users_rule_and_check_run_with_the_shipped_ones(own_rule_and_check):
    found = babysit.diagnose(RunView(lrs=[0.1, 0.1, 0.01]))
    assert [f.code for f in found] == ["first-lr-is-the-peak"]
    assert babysit.diagnose(RunView(lrs=[0.01, 0.1])) == []
    model = torch.nn.Linear(4, 3)
    data = (torch.randn(50, 4), torch.randint(0, 3, (50,)))
    results = preflight(model, torch.nn.functional.cross_entropy, data, batch_size=12,
                        checks=["data", "batch-multiple-of-8"])
    assert [(r.name, r.status) for r in results][-1] == ("batch-multiple-of-8", "warn")
    assert list(CHECKS)[-1] == "batch-multiple-of-8"  # after the shipped checklist
