"""Optimizers and schedules: each lr trajectory against its formula; decay skips biases and norms."""

import pytest
import torch
from torch import nn

from babysit.spec import OptimSpec, ScheduleSpec
from babysit.train.optim import Schedule, build_optimizer, param_groups


def _lrs(spec: ScheduleSpec, steps: int, total: int = 100, evals=None) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, spec, total)
    out = []
    for t in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
        if evals and t in evals:
            s.on_eval(evals[t])
    return out


def test_step_schedule_divides_at_milestones():
    lrs = _lrs(ScheduleSpec(name="step", milestones=[10, 20], factor=0.1), 30)
    assert lrs[9] == 1.0 and lrs[10] == pytest.approx(0.1) and lrs[20] == pytest.approx(0.01)


def test_exponential_and_inverse_time_follow_their_formulas():
    exp = _lrs(ScheduleSpec(name="exponential", gamma=0.9), 20)
    assert exp[15] == pytest.approx(0.9 ** 15)
    inv = _lrs(ScheduleSpec(name="inverse_time", decay=0.5), 20)
    assert inv[10] == pytest.approx(1 / (1 + 0.5 * 10))


def test_cosine_reaches_min_lr_at_the_end():
    lrs = _lrs(ScheduleSpec(name="cosine", min_lr=0.01), 101, total=100)
    assert lrs[50] == pytest.approx(0.01 + 0.99 * 0.5, rel=1e-6)
    assert lrs[100] == pytest.approx(0.01)


def test_cosine_restarts_jump_back_at_each_cycle():
    lrs = _lrs(ScheduleSpec(name="cosine_restarts", cycle_steps=10), 25)
    assert lrs[9] < 0.05 and lrs[10] == pytest.approx(1.0) and lrs[20] == pytest.approx(1.0)


def test_linear_warmup_then_main_schedule():
    lrs = _lrs(ScheduleSpec(name="cosine", warmup_steps=10), 60, total=60)
    assert lrs[0] == pytest.approx(1 / 11)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising during warm-up
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[35] == pytest.approx(0.5, abs=0.02)  # halfway through the 50 cosine steps


def test_plateau_cuts_lr_after_patience_evaluations_without_improvement():
    evals = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}  # no improvement after the first
    lrs = _lrs(ScheduleSpec(name="plateau", patience=2, factor=0.5), 6, evals=evals)
    assert lrs[:4] == [1.0] * 4 and lrs[4] == pytest.approx(0.5)


def test_constant_schedule_builds_no_scheduler():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.3)
    s = Schedule(opt, ScheduleSpec(), 100)
    assert s.per_step is None and s.plateau is None


def test_weight_decay_skips_biases_and_norm_parameters():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    decay, no_decay = param_groups(model, 1e-4, decay_all=False, lr=0.1)
    assert {p.ndim for p in decay["params"]} == {2} and len(decay["params"]) == 2
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0
    assert len(param_groups(model, 1e-4, decay_all=True, lr=0.1)) == 1
    assert len(param_groups(model, 0.0, decay_all=False, lr=0.1)) == 1  # no decay: one group


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                                       ("adagrad", torch.optim.Adagrad), ("lbfgs", torch.optim.LBFGS)])
def test_every_optimizer_comes_from_torch_with_the_spec_settings(name, cls):
    opt = build_optimizer(nn.Linear(3, 2), OptimSpec(name=name, lr=0.05))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.05


def test_adam_defaults_are_the_lectures():
    g = build_optimizer(nn.Linear(3, 2), OptimSpec(name="adam", lr=1e-3)).param_groups[0]
    assert g["betas"] == (0.9, 0.999) and g["eps"] == 1e-8  # LECTURES.md §1


def test_nesterov_momentum_reaches_torch():
    g = build_optimizer(nn.Linear(3, 2), OptimSpec(momentum=0.9, nesterov=True)).param_groups[0]
    assert g["nesterov"] and g["momentum"] == 0.9
