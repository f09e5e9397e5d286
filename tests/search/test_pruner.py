"""The divergence pruner: LECTURES.md §2.8, break out once the cost exceeds 3x the original."""
import math

import optuna
import pytest

from babysit.search.pruner import DivergencePruner, build_pruner, diverged


def test_three_times_the_first_loss_is_the_line():
    assert not diverged({0: 2.0, 10: 5.99})
    assert not diverged({0: 2.0, 10: 6.0})
    assert diverged({0: 2.0, 10: 6.01})
    assert not diverged({0: 2.0, 10: 7.0, 20: 1.5})  # judged on the latest report: it came back
    assert diverged({0: 2.0, 10: 4.1}, factor=2.0)
    assert not diverged({})


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_prunes_at_once(bad):
    assert diverged({0: 2.0, 5: bad})


def _trial_with(values, pruner):
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    for step, v in enumerate(values):
        trial.report(v, step)
    return trial


def test_the_pruner_inside_optuna():
    assert not _trial_with([3.3, 2.5, 9.8], DivergencePruner()).should_prune()
    assert _trial_with([3.3, 2.5, 10.0], DivergencePruner()).should_prune()
    assert _trial_with([3.3, math.nan], DivergencePruner()).should_prune()


def test_median_adds_optunas_median_rule_behind_the_divergence_rule():
    p = build_pruner("median", 3.0, log_every=1)
    assert isinstance(p, DivergencePruner) and isinstance(p.inner, optuna.pruners.MedianPruner)
    with pytest.raises(ValueError, match="choose one of divergence, median"):
        build_pruner("hyperband")
    with pytest.raises(ValueError, match="factor must be > 1"):
        DivergencePruner(0.5)
