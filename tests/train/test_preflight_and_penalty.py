"""train.preflight runs the checklist into the run's record; train.regularizer adds to the loss."""
import json

import pytest

from babysit.errors import TrainingError
from babysit.session import build_trainer
from babysit.watch.record import read_events


def _losses(run):
    return [e["train_loss"] for e in read_events(run / "metrics.jsonl") if e["kind"] == "train"]


def test_preflight_results_land_in_the_record_and_leave_the_run_unchanged(tmp_path, digits_spec):
    with_checks = build_trainer(digits_spec("train.preflight=true", steps=100), tmp_path / "a", progress=False).fit()
    without = build_trainer(digits_spec(steps=100), tmp_path / "b", progress=False).fit()
    results = json.loads((tmp_path / "a" / "preflight.json").read_text())
    assert [r["name"] for r in results][:2] == ["data", "initial-loss"]
    event = next(e for e in read_events(tmp_path / "a" / "metrics.jsonl") if e["kind"] == "preflight")
    assert event["initial-loss"] == "pass" and event["overfit-tiny"] == "pass"
    # copies and a forked random state: the same run, step for step
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert with_checks["val_loss"] == without["val_loss"]
    # without train.preflight the doctor's cheap data check alone ran, through the same callback
    assert [r["name"] for r in json.loads((tmp_path / "b" / "preflight.json").read_text())] == ["data"]


def test_a_failed_preflight_stops_before_training_and_keeps_the_results(tmp_path, tiny_names_spec):
    spec = tiny_names_spec("train.preflight=true", "model.init.output.scale=5.0")  # confidently wrong logits
    with pytest.raises(TrainingError, match="preflight failed: initial-loss: .*scale the output layer"):
        build_trainer(spec, tmp_path, progress=False).fit()
    results = {r["name"]: r for r in json.loads((tmp_path / "preflight.json").read_text())}
    assert results["initial-loss"]["status"] == "fail" and results["initial-loss"]["measured"]["ratio"] > 3
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "metrics.jsonl").exists()
    # the fixed setup may use the same folder: nothing was trained there
    fixed = tiny_names_spec("train.preflight=true", "model.init.output.scale=0.01", steps=50)
    assert build_trainer(fixed, tmp_path, progress=False).fit()["steps"] == 50
    assert json.loads((tmp_path / "preflight.json").read_text())[1]["status"] == "pass"


def test_an_l2_regularizer_is_part_of_the_logged_loss_and_shrinks_the_weights(tmp_path, digits_spec):
    runs = {}
    for name, strength in (("none", 0.0), ("l2", 0.01)):
        spec = digits_spec("optim.weight_decay=0", "model.dropout=0", f"train.regularizer={{strength: {strength}}}",
                           steps=100)
        trainer = build_trainer(spec, tmp_path / name, progress=False)
        trainer.fit()
        runs[name] = (trainer, _losses(tmp_path / name))
    norm = {k: sum(float(p.detach().pow(2).sum()) for p in t.model.parameters() if p.ndim >= 2) for k, (t, _) in runs.items()}
    assert norm["l2"] < norm["none"]
    # the first logged window: same data and init, so the gap is the penalty, 0.01 * 0.5 * |W|^2 >> 0.1
    assert runs["l2"][1][0] - runs["none"][1][0] > 0.1
