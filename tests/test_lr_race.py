"""The race after the lr sweep: short runs of the spec's own model and data at candidate lrs, the
lowest val loss chosen, its cost a known share of one run; `babysit lr-find --race --write`."""
import math

import pytest
import yaml
from click.testing import CliRunner

from babysit.cli import main
from babysit.data import build_data
from babysit.errors import SpecError, TrainingError
from babysit.lr_race import (QUARTER_DECADE, RACE_FACTORS, RACE_RUNGS, RACE_SHIFT, cost, race, race_spec, run_steps,
                             write_spec_with_lr)
from babysit.preflight.lr_find import lr_range_test
from babysit.session import build_trainer
from babysit.spec import load_spec
from babysit.train import Trainer


@pytest.fixture(scope="module")
def raced():
    spec = load_spec("digits-mlp", ["train.steps=200", "schedule.name=constant"])
    data = build_data(spec.data)
    sweep = lr_range_test(spec, data, steps=120)
    lines = []
    return spec, data, sweep, race(spec, sweep, data, echo=lines.append), lines


def test_candidates_spread_below_the_sweeps_minimum_and_the_best_val_loss_wins(raced):
    _, _, sweep, result, _ = raced
    assert [c.lr for c in result.candidates] == pytest.approx([sweep.falling[1] * f for f in RACE_FACTORS])
    finalists = [c for c in result.candidates if c.steps == max(c.steps for c in result.candidates)]
    assert len(finalists) == (RACE_RUNGS[-2][1] if len(RACE_RUNGS) > 1 else len(RACE_FACTORS))
    best = min(finalists, key=lambda c: c.val_loss)
    assert result.winner is best and result.chosen == pytest.approx(best.lr * QUARTER_DECADE ** RACE_SHIFT)
    assert len({round(c.val_loss, 6) for c in result.candidates}) == len(RACE_FACTORS)  # they really differ


def test_the_race_costs_its_share_of_one_run(raced):
    _, _, _, result, _ = raced
    assert result.share == pytest.approx(cost(len(RACE_FACTORS), RACE_RUNGS), abs=0.01)
    assert result.share <= 0.30  # the bar


def test_cost_counts_every_candidate_to_the_first_rung_and_survivors_on():
    assert cost(3, ((0.1, 1),)) == pytest.approx(0.3)
    assert cost(4, ((0.05, 2), (0.15, 1))) == pytest.approx(4 * 0.05 + 2 * 0.10)


def test_successive_halving_resumes_the_best_and_matches_a_straight_run(raced, tmp_path):
    spec, data, sweep, _, _ = raced
    result = race(spec, sweep, data, factors=(0.03, 0.1, 0.3), rungs=((0.05, 1), (0.15, 1)), shift=-1)
    steps = sorted(c.steps for c in result.candidates)
    assert steps == [10, 10, 30]  # two stop at the first rung, the best goes on
    assert result.share == pytest.approx(cost(3, ((0.05, 1), (0.15, 1))))
    straight = build_trainer(race_spec(spec, result.winner.lr, 30), tmp_path / "straight", progress=False,
                             data=data, doctor=False, checks=()).fit()
    assert result.winner.steps == 30 and result.winner.val_loss == pytest.approx(straight["val_loss"], rel=1e-6)
    assert result.chosen == pytest.approx(result.winner.lr / QUARTER_DECADE)


def test_a_candidate_is_the_specs_own_run_cut_short(raced, tmp_path):
    spec, data, _, result, _ = raced
    c = result.candidates[0]
    cut = spec.model_copy(update={"optim": spec.optim.model_copy(update={"lr": c.lr}),
                                  "train": spec.train.model_copy(update={"steps": c.steps})})
    summary = build_trainer(cut, tmp_path / "plain", progress=False, data=data).fit()
    assert summary["val_loss"] == pytest.approx(c.val_loss, rel=1e-6)


def test_the_race_reports_each_candidate_as_it_finishes(raced):
    *_, result, lines = raced
    assert lines[0].startswith(f"race: {len(RACE_FACTORS)} candidate lrs to {100 * RACE_RUNGS[0][0]:g}% of the run's 200 steps")
    assert len(lines) == 2 + len(result.candidates) + sum(k for _, k in RACE_RUNGS[:-1])
    assert lines[-1].startswith(f"race chose lr {result.chosen:.3g}")


def test_a_diverged_candidate_never_wins():
    spec = load_spec("digits-mlp", ["train.steps=100", "optim.name=sgd", "optim.weight_decay=0"])
    sweep = lr_range_test(spec, steps=100)
    result = race(spec, sweep, factors=(1e5, 0.1), rungs=((0.2, 1),), shift=0)
    assert math.isinf(result.candidates[0].val_loss)
    assert result.chosen == result.candidates[1].lr
    with pytest.raises(TrainingError, match="every race candidate diverged"):
        race(spec, sweep, factors=(1e5,), rungs=((0.2, 1),))


def test_an_epochs_budget_counts_the_steps_the_trainer_would_take(raced, tmp_path):
    spec, data, *_ = raced
    by_epochs = spec.model_copy(update={"train": spec.train.model_copy(
        update={"steps": None, "epochs": 3, "batch_size": 100})})
    assert run_steps(by_epochs, data) == Trainer(by_epochs, tmp_path, data=data).total_steps == 42


def test_the_written_spec_loads_with_the_lr_and_an_existing_file_is_kept(tmp_path):
    spec = load_spec("digits-cnn")
    out = tmp_path / "tuned.yaml"
    write_spec_with_lr(spec, 0.00316, out)
    assert load_spec(str(out)).optim.lr == 0.00316
    assert load_spec(str(out)).model == spec.model
    with pytest.raises(SpecError, match="exists.*nothing was overwritten"):
        write_spec_with_lr(spec, 0.1, out)


def test_cli_races_and_writes_the_spec(tmp_path):
    out = tmp_path / "spec.yaml"
    result = CliRunner().invoke(main, ["lr-find", "digits-mlp", "--steps", "120", "--set", "train.steps=100",
                                       "--race", "--write", str(out), "--out", str(tmp_path / "lr.png")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    reports = len(RACE_FACTORS) + sum(keep for _, keep in RACE_RUNGS[:-1])  # each candidate at each rung it ran
    assert sum("x the sweep's minimum): val loss" in line for line in lines) == reports
    chosen = float(lines[-1].removeprefix("suggested lr: "))
    assert f"race chose lr {chosen:.3g}" in result.output
    assert yaml.safe_load(out.read_text())["optim"]["lr"] == chosen
    again = CliRunner().invoke(main, ["lr-find", "digits-mlp", "--write", str(out)])
    assert again.exit_code != 0 and "nothing was overwritten" in again.output
