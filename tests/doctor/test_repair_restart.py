"""Issue 5: a repair that changes only the optimizer continues from the last good checkpoint
(fresh optimizer, same total budget); a fix to the model or init restarts from scratch."""
import json

import babysit
from babysit.layout import REPAIRS
from babysit.repair import _checkpoint_start, train_with_repairs
from babysit.watch.record import read_events

# lr 20 reached by a 300-step linear warm-up: the loss stays sane for ~70 steps, then passes 3x
# its start (loss-diverged), after a checkpoint (every 10 steps) was written.
DIVERGING = ["train.steps=400", "train.eval_every=200", "train.log_every=5", "train.checkpoint_every=10",
             "model.hidden=[32]", "optim.lr=20", "watch.every=1000", "schedule.name=constant",
             "schedule.milestones=[]", "schedule.warmup_steps=300"]


def test_an_lr_repair_continues_from_the_last_good_checkpoint(tmp_path):
    res = train_with_repairs(babysit.load_spec("makemore-kaiming", DIVERGING), tmp_path / "run", max_repairs=1,
                             echo=lambda *_: None)
    first, second = res["attempts"]
    assert "loss-diverged" in first["stopped"] and first["started"] == "scratch"
    assert {c["fix"] for c in second["changes"]} <= {"lower-lr", "raise-lr", "grad-clip"}
    start = second["started"]["step"]
    assert 0 < start < first["bad_from"] and second["started"]["checkpoint"].endswith("run/checkpoint.pt")
    windows = read_events(second["run_dir"], "train")
    assert windows[0]["step"] == start + 5  # the first log window after the checkpoint's step
    summary = json.loads((tmp_path / "run" / "repair-1" / "summary.json").read_text())
    assert summary["steps"] == 400  # the same total budget
    assert json.loads((tmp_path / "run" / REPAIRS).read_text())["attempts"][1]["started"]["step"] == start


def test_model_fixes_and_finished_runs_restart_from_scratch(tmp_path):
    stopped = {"run_dir": str(tmp_path), "stopped": "doctor: loss-diverged ...", "bad_from": 50,
               "findings": [{"code": "loss-diverged", "severity": "error"}]}
    (tmp_path / "checkpoint.pt").write_bytes(b"")  # never read: the plan rules it out first
    assert _checkpoint_start({**stopped, "next_changes": [{"fix": "lower-lr"}, {"fix": "gain-init"}]}) is None
    assert _checkpoint_start({**stopped, "stopped": None, "findings": [],
                              "next_changes": [{"fix": "lower-lr"}]}) is None
