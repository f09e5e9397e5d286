"""Snapshot ensembles: one snapshot at the end of each cosine-restart cycle (where the lr is at
its minimum), evaluated as an ensemble at the end; other schedules are refused."""
import json

import pytest
from click.testing import CliRunner

from babysit.cli import main
from babysit.spec import SpecError
from babysit.errors import TrainingError
from babysit.session import build_trainer
from babysit.train.snapshots import cycle_ends, snapshot_paths
from babysit.watch.record import read_events

SNAP = ["train.snapshots=true", "schedule.name=cosine_restarts"]


def test_cycle_ends():
    assert cycle_ends(0, 30, 1, 120) == [30, 60, 90, 120]
    assert cycle_ends(10, 25, 2, 120) == [35, 85]  # the 100-step third cycle would end at 185
    assert cycle_ends(0, 200, 1, 120) == []


@pytest.mark.parametrize("cycle, mult, warm, count", [(30, 1, 0, 4), (25, 2, 10, 2)])
def test_one_snapshot_per_cycle_at_the_lr_minimum(tmp_path, digits_spec, cycle, mult, warm, count):
    spec = digits_spec(*SNAP, f"schedule.cycle_steps={cycle}", f"schedule.cycle_mult={mult}",
                       f"schedule.warmup_steps={warm}", "train.log_every=1", steps=120)
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    paths = snapshot_paths(tmp_path)
    steps = [int(p.stem.split("-")[1]) for p in paths]
    assert len(paths) == count == summary["snapshots"]
    assert steps == cycle_ends(warm, cycle, mult, 120)
    lr = {e["step"]: e["lr"] for e in read_events(tmp_path, "train")}
    for s in steps[:-1]:
        assert lr[s - 1] < 0.02 * spec.optim.lr  # the last update of a cycle: lr near its minimum
        assert lr[s] == pytest.approx(spec.optim.lr)  # then the warm restart
    out = CliRunner().invoke(main, ["ensemble", str(tmp_path), "--snapshots", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.output)
    assert len(r["members"]) == count
    assert r["acc"] == pytest.approx(summary["snapshot_val_acc"]) and r["loss"] == pytest.approx(summary["snapshot_val_loss"])


def test_snapshots_need_cosine_restarts(digits_spec):
    with pytest.raises(SpecError, match="train.snapshots needs schedule.name: cosine_restarts.*got 'constant'"):
        digits_spec("train.snapshots=true")


def test_no_complete_cycle_is_an_error(tmp_path, digits_spec):
    spec = digits_spec(*SNAP, "schedule.cycle_steps=500", steps=100)
    with pytest.raises(TrainingError, match="no cosine_restarts cycle ends within the run"):
        build_trainer(spec, tmp_path, progress=False).fit()
