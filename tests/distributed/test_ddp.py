"""`babysit train --nproc 2` on gloo/CPU: both ranks train, the loss follows the one-process run,
rank 0 alone writes the run folder, workers die with a SIGKILLed launcher and --resume finishes
the run, and a NaN or an exception on one rank stops every rank (never a hang)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from babysit.cli import main
from babysit.data import Split
from babysit.layout import CHECKPOINT, METRICS, REPORT, SUMMARY
from babysit.session import build_trainer
from babysit.spec import load_spec
from babysit.train.batches import BatchSampler
from babysit.train.distributed import RankShare, check_spec

SRC = str(Path(__file__).resolve().parents[2] / "src")
FAULTY = Path(__file__).resolve().parent / "faulty.py"
# makemore-bn shrunk: 400 steps of batch 32 take under 1 s on one process, 4 s on two (gloo's
# all-reduce per step dominates at this size); a checkpoint every 100 steps to kill after.
SMALL = ["train.steps=400", "schedule.milestones=[200]", "train.eval_every=200", "train.log_every=50",
         "train.checkpoint_every=100", "model.hidden=[32]"]
# The bar: two processes end within 0.02 of one process's val loss (measured 0.0013).
VAL_LOSS_TOLERANCE = 0.02
# Seconds a worker may outlive its SIGKILLed launcher (the kernel's PDEATHSIG is immediate).
ORPHAN_GRACE_S = 5
# A run's bound, far above its time (about 15 s on a quiet machine, 40 s at load 8 on two cores) and
# far below a hang's (a rank waiting on a dead one: the collective timeout, 10 minutes).
RUN_TIMEOUT_S = 120


def _cmd(*args):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "babysit.cli", "train", *[str(a) for a in args]], env


def _sets(items):
    return [a for s in items for a in ("--set", s)]


def _run(tmp_path, *args, name="log"):
    cmd, env = _cmd(*args)
    log = tmp_path / f"{name}.txt"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    return proc.returncode, log.read_text()


def _worker_pids(text: str) -> dict[int, int]:
    return {int(r): int(p) for r, p in re.findall(r"^rank (\d+)/2: pid (\d+)", text, re.M)}


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead, only not yet reaped


def _wait_dead(pids, timeout: float) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_two_processes_follow_one_survive_a_killed_launcher_and_resume(tmp_path):
    one = build_trainer(load_spec("makemore-bn", SMALL), tmp_path / "one", progress=False).fit()
    out = tmp_path / "two"
    cmd, env = _cmd("makemore-bn", *_sets(SMALL), "--out", out, "--nproc", 2, "--quiet")
    log = tmp_path / "first.txt"
    with open(log, "w") as fh:
        launcher = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.time() + RUN_TIMEOUT_S
        while not (out / CHECKPOINT).exists() and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.05)
        assert launcher.poll() is None, f"the run ended before its first checkpoint:\n{log.read_text()}"
        launcher.send_signal(signal.SIGKILL)  # mid-run: 100 of 400 steps are checkpointed
        launcher.wait()
    pids = _worker_pids(log.read_text())
    assert sorted(pids) == [0, 1], log.read_text()  # both ranks took part, each said so
    assert _wait_dead(pids.values(), ORPHAN_GRACE_S) == []  # the workers died with their launcher
    assert not (out / SUMMARY).exists()

    code, text = _run(tmp_path, "makemore-bn", *_sets(SMALL), "--out", out, "--nproc", 2, "--resume",
                      "--quiet", name="resume")
    assert code == 0, text
    assert sorted(_worker_pids(text)) == [0, 1]
    two = json.loads((out / SUMMARY).read_text())
    assert two["steps"] == one["steps"] == 400
    assert abs(two["val_loss"] - one["val_loss"]) < VAL_LOSS_TOLERANCE, (two["val_loss"], one["val_loss"])
    # rank 0 alone wrote the folder: the files of a one-process run (whose report the suite's
    # conftest turns off in-process), each event once
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT, *(p.name for p in (tmp_path / "one").iterdir())])
    events = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    train_steps = [e["step"] for e in events if e["kind"] == "train"]
    assert train_steps == list(range(50, 401, 50))
    assert [e["step"] for e in events if e["kind"] == "eval"] == [200, 400]


def _faulty_spec(tmp_path, fault: str) -> Path:
    spec = {"name": f"faulty-{fault}", "seed": 0, "data": {"kind": "digits"},
            "model": {"kind": "python", "factory": f"{FAULTY}:build", "args": {"fault": fault, "at_step": 30}},
            "optim": {"name": "sgd", "lr": 0.05},
            "train": {"steps": 400, "batch_size": 32, "eval_every": 100, "log_every": 10,
                      "checkpoint_every": 100}}
    path = tmp_path / f"{fault}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_nan_or_an_exception_on_one_rank_stops_every_rank(tmp_path):
    """Both runs at once (each is mostly the start of three interpreters)."""
    procs = {}
    for fault in ("raise", "nan"):
        cmd, env = _cmd(_faulty_spec(tmp_path, fault), "--out", tmp_path / fault, "--nproc", 2, "--quiet")
        fh = open(tmp_path / f"{fault}.txt", "w")
        procs[fault] = (subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT), fh)
    for proc, fh in procs.values():
        proc.wait(timeout=RUN_TIMEOUT_S)  # stopped, not hung until the collective timeout
        fh.close()
    code = {fault: proc.returncode for fault, (proc, _) in procs.items()}
    text = {fault: (tmp_path / f"{fault}.txt").read_text() for fault in procs}

    # an exception: the rank's own error, the launcher's one line, every worker gone
    assert code["raise"] != 0
    assert "planted fault on rank 1 at step 30" in text["raise"] and "rank 1 of 2 failed" in text["raise"]
    pids = _worker_pids(text["raise"])
    assert sorted(pids) == [0, 1] and _wait_dead(pids.values(), ORPHAN_GRACE_S) == []

    # a NaN: the all-ranks mean loss is NaN everywhere, so every rank stops at the same flush; a
    # run that ended in an error exits 1 (babysit train's rule), and rank 0's summary says why
    assert code["nan"] == 1, text["nan"]
    summary = json.loads((tmp_path / "nan" / SUMMARY).read_text())
    assert summary["steps"] == 30 and summary["status"] == "failed" and "non-finite" in summary["stopped"]
    events = [json.loads(line) for line in (tmp_path / "nan" / METRICS).read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "train"] == [10, 20, 30]


def test_each_rank_takes_its_share_of_the_one_seeded_batch():
    x = torch.arange(100.0).unsqueeze(1)
    split = Split(x, torch.arange(100))
    one = BatchSampler(split, 8, seed=3)
    shares = [RankShare(BatchSampler(split, 8, seed=3), r, 2) for r in range(2)]
    for _ in range(30):  # across epochs
        xb, yb = one.next()
        parts = [s.next() for s in shares]
        assert torch.equal(torch.cat([p[0] for p in parts]), xb) and torch.equal(torch.cat([p[1] for p in parts]), yb)
    a, b = shares[1].state_dict(), one.state_dict()
    assert (a["epoch"], a["pos"]) == (b["epoch"], b["pos"]) and torch.equal(a["gen"], b["gen"])
    assert shares[0].per_epoch == one.per_epoch


@pytest.mark.parametrize("sets, message", [
    (["optim.name=lbfgs", "optim.lr=1", "train.batch_size=full"], "lbfgs cannot train on several processes"),
    (["train.batch_size=33"], "does not split evenly among 2 processes"),
    (["model.sync_batchnorm=true", "train.device=cpu"], "model.sync_batchnorm needs CUDA"),
])
def test_what_cannot_run_under_ddp_is_refused_before_launching(tmp_path, sets, message):
    result = CliRunner().invoke(main, ["train", "makemore-bn", *_sets(sets), "--nproc", "2",
                                       "--out", str(tmp_path / "r")], catch_exceptions=False)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(Exception, match=re.escape(message)):
        check_spec(load_spec("makemore-bn", sets), 2, 33 if "33" in sets[0] else 32, torch.device("cpu"))
