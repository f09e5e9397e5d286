"""A search shared through a real PostgreSQL server (postgres_server.py: Debian's package, a
throwaway cluster; the test fails when it cannot start): two worker processes, as on two
machines, one SIGKILLed mid-trial and restarted. Every planned trial completes exactly once, the
killed attempt stays failed with its retry linked to it, the stages complete, and the password
shows nowhere. A wrong password or a server that is not there is one clear line."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState

from babysit.cli import main
from babysit.search.study import FAILED, open_storage

from postgres_server import PostgresServer, _free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")
STAGES = [{"trials": 4, "steps": 400}, {"trials": 2, "steps": 400}]
# A killed worker's trial is failed after two missed beats (study.py), so 1 s keeps the test short.
HEARTBEAT_S = 1
SEARCH_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


def _spec(tmp_path) -> Path:
    spec = {"name": "tiny", "seed": 3, "data": {"kind": "names", "context": 3},
            "model": {"kind": "mlp", "embed_dim": 4, "hidden": [16], "batchnorm": True},
            "optim": {"name": "sgd", "lr": 0.1}, "train": {"steps": 400, "log_every": 20, "eval_every": 200},
            "watch": {"enabled": False},
            "search": {"params": {"optim.lr": {"type": "log_uniform", "low": 1e-2, "high": 0.3},
                                  "optim.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-3}},
                       "stages": STAGES, "heartbeat_s": HEARTBEAT_S}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _search(spec, out, log: Path, env: dict, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "babysit.cli", "search", str(spec), "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def test_two_workers_share_a_postgres_search_and_a_killed_ones_trial_is_retried_once(tmp_path, pg):
    spec = _spec(tmp_path)
    pgpass = tmp_path / "pgpass"  # the joining worker's password, where libpq looks for it
    pgpass.write_text(f"127.0.0.1:{pg.port}:*:babysit:{pg.password}\n")
    pgpass.chmod(0o600)
    joiner_env = {"OPTUNA_STORAGE": pg.url_without_password, "PGPASSFILE": str(pgpass)}
    driver = _search(spec, tmp_path / "a", tmp_path / "driver.txt", {"OPTUNA_STORAGE": pg.url})
    joiner = _search(spec, tmp_path / "b", tmp_path / "joiner1.txt", joiner_env, "--join")

    study = None
    deadline, killed = time.time() + SEARCH_TIMEOUT_S, None
    while killed is None and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
        try:
            study = study or optuna.load_study(study_name="tiny", storage=open_storage(pg.url, HEARTBEAT_S))
        except KeyError:  # not created yet
            continue
        mine = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.params and t.user_attrs.get("worker", "").endswith(f":{joiner.pid}")]
        if mine:  # the joining worker is training a trial: kill it mid-trial
            joiner.send_signal(signal.SIGKILL)
            joiner.wait()
            killed = mine[0].number
    assert killed is not None, (tmp_path / "joiner1.txt").read_text()[-3000:]
    rejoined = _search(spec, tmp_path / "b", tmp_path / "joiner2.txt", joiner_env, "--join")
    assert driver.wait(timeout=SEARCH_TIMEOUT_S) == 0, (tmp_path / "driver.txt").read_text()[-3000:]
    assert rejoined.wait(timeout=SEARCH_TIMEOUT_S) == 0, (tmp_path / "joiner2.txt").read_text()[-3000:]

    trials = study.get_trials(deepcopy=False)
    table = "\n".join(f"{t.number} {t.state.name} {t.user_attrs} {t.system_attrs} {t.params}" for t in trials)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    for stage, planned in enumerate(STAGES):  # every planned trial completed, exactly once
        ran = [t for t in finished if t.user_attrs["stage"] == stage]
        assert len(ran) == planned["trials"]
        assert len({tuple(sorted(t.params.items())) for t in ran}) == planned["trials"], table
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [killed] and FAILED not in failed[0].user_attrs  # interrupted
    (retry,) = [t for t in finished if t.system_attrs.get("failed_trial") == killed]
    assert retry.params == failed[0].params
    assert len(trials) == sum(s["trials"] for s in STAGES) + 1  # nothing else ran
    assert study.user_attrs["finished"] and {"stage0", "stage1"} <= set(study.user_attrs)
    assert (tmp_path / "a" / "best.yaml").is_file()
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in finished}
    assert str(driver.pid) in workers and len(workers) >= 2  # both machines trained

    # the password: masked in what is printed, nowhere in any output or file
    driver_text = (tmp_path / "driver.txt").read_text()
    assert f"postgresql://babysit:***@127.0.0.1:{pg.port}/search" in driver_text
    texts = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != pgpass}
    assert [p for p, b in texts.items() if pg.password.encode() in b] == []


@pytest.mark.parametrize("case", ["wrong password", "no server"])
def test_a_wrong_password_or_no_server_is_one_clear_line(tmp_path, pg, case):
    port = pg.port if case == "wrong password" else _free_port()
    url = f"postgresql://babysit:not-the-password@127.0.0.1:{port}/search"
    result = CliRunner().invoke(main, ["search", str(_spec(tmp_path)), "--storage", url, "--out",
                                       str(tmp_path / "s")], catch_exceptions=False)
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"Error: cannot open the search storage postgresql://babysit:***@127.0.0.1:{port}/search")
    assert ("password authentication failed" if case == "wrong password" else "Connection refused") in line
    assert "not-the-password" not in line
