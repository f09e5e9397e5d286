"""The learning-rate range test on real data: the loss falls in the middle of the sweep, the 3x
rule stops it, and the suggestion sits inside the falling range."""
import math

import pytest
from click.testing import CliRunner

from babysit.cli import main
from babysit.errors import TrainingError
from babysit.preflight.lr_find import lr_range_test
from babysit.reference import DIVERGE_FACTOR as DIVERGED
from babysit.spec import load_spec


@pytest.fixture(scope="module")
def digits_sweep():
    return lr_range_test(load_spec("digits-mlp"), steps=200)


def test_sweep_is_exponential_and_stops_at_the_3x_rule(digits_sweep):
    r = digits_sweep
    ratios = [b / a for a, b in zip(r.lrs, r.lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)  # constant factor: log-spaced
    assert r.stopped_at is not None and r.stopped_at > 0.1  # Adam on digits blows up far above 1e-3
    assert r.losses[-1] > DIVERGED * r.losses[0]


def test_suggestion_lies_in_the_falling_range_and_near_adams_default(digits_sweep):
    r = digits_sweep
    lo, hi = r.falling
    assert lo < r.suggested < hi
    assert 1e-4 <= r.suggested <= 1e-2  # LECTURES.md §1: Adam lr 1e-3 or 5e-4
    i_lo, i_hi = r.lrs.index(lo), r.lrs.index(hi)
    assert r.losses[i_hi] < 0.5 * r.losses[i_lo]  # the loss really falls across the range


def test_lbfgs_and_bad_bounds_are_rejected():
    with pytest.raises(TrainingError, match="first-order optimizer"):
        lr_range_test(load_spec("digits-mlp", ["optim.name=lbfgs", "train.batch_size=full", "optim.weight_decay=0"]))
    with pytest.raises(TrainingError, match="0 < start < end.*start=1.0, end=0.1"):
        lr_range_test(load_spec("digits-mlp"), start=1.0, end=0.1)


def test_cli_prints_the_range_and_saves_the_plot(tmp_path):
    out = tmp_path / "lr.png"
    result = CliRunner().invoke(main, ["lr-find", "makemore-bn", "--steps", "150", "--set", "model.hidden=[64]",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "suggested lr" in result.output and out.stat().st_size > 10_000
    suggested = float(result.output.split("suggested lr ")[1].split()[0])
    assert 1e-3 < suggested < 1.0 and math.isfinite(suggested)


def test_the_sweep_trains_on_batches_augmented_as_training_sees_them():
    from babysit.preflight.setup import setup_from_spec

    def rows_found_in_train(preset):
        setup = setup_from_spec(load_spec(preset))
        x, _ = setup.training_batches().next()  # on the run's device
        x = x.cpu()
        train = setup.data.train.x.flatten(1)
        return sum(bool((train == row).all(1).any()) for row in x.flatten(1)), len(x)

    found, n = rows_found_in_train("digits-cnn")
    assert found == n  # no augmentation: every batch row is a training image
    found, n = rows_found_in_train("digits-cnn-augment")
    assert found < n // 2  # crops and jitter: most rows are new images


def test_a_sweep_that_never_blows_up_says_to_widen_it():
    result = lr_range_test(load_spec("digits-mlp"), end=1e-3, steps=60)
    assert result.stopped_at is None
    assert "never blew up below lr 0.001" in str(result) and "--end" in str(result)
    assert "never blew up" not in str(lr_range_test(load_spec("digits-mlp"), steps=200))


def test_the_lr_range_check_skips_lbfgs_instead_of_failing_the_checklist():
    from babysit.preflight.lr_find import check_lr_range
    from babysit.preflight.setup import setup_from_spec

    spec = load_spec("digits-mlp", ["optim.name=lbfgs", "train.batch_size=full", "optim.weight_decay=0"])
    result = check_lr_range(setup_from_spec(spec))
    assert result.status == "skip" and "line search" in result.advice
