"""The Trainer's doctor: a resumed run keeps its loss rules (review: init-loss-*, loss-plateau and
loss-diverged went silent after --resume), loss-diverged stops a run without a Watch, and the stop
rules check only the new window yet stop where a full rescan would."""
import json
import math
import random

import pytest
import torch
from torch import nn

import babysit
from babysit.doctor.callback import DoctorCallback
from babysit.layout import FINDINGS
from babysit.doctor.diagnose import STOP_RULES, diagnose
from babysit.doctor.view import RunView

SMALL = ["schedule.milestones=[150]", "train.eval_every=100", "train.log_every=50", "model.hidden=[32]",
         "watch.every=50", "train.checkpoint_every=100"]


def _found(run):
    return sorted((f["code"], f["where"]) for f in json.loads((run / FINDINGS).read_text())["findings"])


def test_a_resumed_run_gets_the_same_findings_as_a_fresh_one(tmp_path):
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    babysit.build_trainer(babysit.load_spec("makemore-original", SMALL + ["train.steps=300"]), fresh, progress=False).fit()
    babysit.build_trainer(babysit.load_spec("makemore-original", SMALL + ["train.steps=200"]), resumed,
                    progress=False).fit()
    babysit.build_trainer(babysit.load_spec("makemore-original", SMALL + ["train.steps=300"]), resumed, progress=False,
                    resume=True).fit()
    assert ("init-loss-high", "out") in _found(fresh)  # MM3's original net starts at ~8x ln(27)
    assert _found(resumed) == _found(fresh)


def test_loss_diverged_stops_a_run_without_a_watch(tmp_path):
    spec = babysit.load_spec("makemore-kaiming", ["train.steps=400", "schedule.milestones=[300]",
                                                  "train.eval_every=200", "train.log_every=2",
                                                  "train.checkpoint_every=400", "model.hidden=[32]",
                                                  "optim.lr=50", "watch.enabled=false"])
    summary = babysit.build_trainer(spec, tmp_path / "run", progress=False).fit()
    assert summary["steps"] < 400 and "loss-diverged" in summary["stopped"]
    codes = [c for c, _ in _found(tmp_path / "run")]
    assert "loss-diverged" in codes


class _Trainer:  # what on_log reads of a Trainer, and how it is stopped
    def __init__(self, watch):
        self.watch, self.stop_reason, self.step = watch, None, 0

    def stop(self, reason, failed):
        self.stop_reason = self.stop_reason or reason


def _stop_step(losses, log_every):
    """Feed `losses` through a Watch; the step at which the incremental stop rules stop, and the
    step at which a full rescan of everything seen so far first gives an error."""
    watch = babysit.Watch(nn.Sequential(nn.Tanh()), every=10 ** 9, flush_every=1 << 62)
    cb, tr, full_at, evidence = DoctorCallback(), _Trainer(watch), None, None
    for i, x in enumerate(losses, 1):
        watch.step(torch.tensor(x))
        if i % log_every == 0 or i == len(losses):
            tr.step = i
            cb.on_log(tr, i, {"train_loss": 0.0})
            errors = [f for f in diagnose(RunView(losses=list(watch.losses)), STOP_RULES) if f.severity == "error"]
            if errors and full_at is None:
                full_at, evidence = i, errors[0].evidence
            if tr.stop_reason is not None:
                return i, full_at, tr.stop_reason, evidence
    return None, full_at, None, evidence


@pytest.mark.parametrize("seed", range(6))
def test_incremental_stop_rules_stop_where_a_full_rescan_does(seed):
    rnd = random.Random(seed)
    losses = [3.0 + rnd.uniform(-0.5, 0.5) for _ in range(300)]
    k = rnd.randrange(20, 290)
    if seed % 3 == 0:
        losses[k] = math.nan
    elif seed % 3 == 1:  # a 5-step mean past 3x the first loss, straddling flushes
        for j in range(k, min(k + 5, 300)):
            losses[j] = 12.0
    else:
        k = None  # healthy: neither stops
    stopped, full_at, reason, evidence = _stop_step(losses, log_every=rnd.choice([1, 3, 7, 50]))
    assert stopped == full_at
    if k is None:
        assert stopped is None
    else:
        assert stopped is not None and str(evidence.get("first_bad_step", evidence.get("step"))) in reason


def test_stop_rules_read_only_the_new_window():
    """O(window) per flush: steps already checked are not read again (a full rescan read all)."""
    watch = babysit.Watch(nn.Sequential(nn.Tanh()), every=10 ** 9, flush_every=1 << 62)
    cb, tr = DoctorCallback(), _Trainer(watch)
    for i in range(1, 201):
        watch.step(torch.tensor(3.0))
    cb.on_log(tr, 200, {"train_loss": 3.0})
    watch.losses[:190] = [math.nan] * 190  # only a rescan of old steps could see these
    for i in range(201, 251):
        watch.step(torch.tensor(3.0))
    cb.on_log(tr, 250, {"train_loss": 3.0})
    assert tr.stop_reason is None
    watch.step(torch.tensor(math.nan))
    cb.on_log(tr, 251, {"train_loss": 3.0})
    assert "non-finite" in tr.stop_reason and "251" in tr.stop_reason
