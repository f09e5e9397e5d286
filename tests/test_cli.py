"""The command line: help everywhere, train/eval/sample/demo on small budgets, and user errors
as one clear message (exit 1, no traceback)."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from babysit.cli import main

COMMANDS = ["train", "demo", "eval", "sample", "presets"]


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)
    return invoke


@pytest.mark.parametrize("command", COMMANDS)
def test_help_everywhere(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output and "--help" in result.output


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "babysit.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)


def test_train_eval_sample_round_trip(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "makemore-bn", "--set", "train.steps=200", "--set", "schedule.milestones=[100]",
                 "--set", "train.eval_every=100", "--out", str(run), "--quiet")
    assert result.exit_code == 0, result.output
    assert "val loss" in result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 200 and summary["val_loss"] < 3.0  # below ln 27 = 3.29 after 200 steps

    result = cli("eval", str(run), "--split", "test", "--json")
    test = json.loads(result.output)
    assert test["split"] == "test" and test["examples"] == 22866 and test["loss"] == pytest.approx(
        summary["val_loss"], abs=0.1)

    result = cli("sample", str(run), "-n", "7", "--seed", "3")
    names = result.output.split()
    assert len(result.output.splitlines()) == 7 and all(set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in names)
    assert result.output == cli("sample", str(run), "-n", "7", "--seed", "3").output  # seeded


def test_demo_prints_losses_and_names(cli, tmp_path):
    result = cli("demo", "--steps", "200", "-n", "10", "--out", str(tmp_path / "demo"))
    assert result.exit_code == 0, result.output
    assert "train loss" in result.output and "val loss" in result.output
    names_line = [l for l in result.output.splitlines() if l.startswith("sampled names:")][0]
    assert len(names_line.split(":", 1)[1].split(",")) == 10


def test_a_malformed_spec_is_one_clear_error(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: -0.1}\ntrain: {steps: 10}\n")
    result = CliRunner().invoke(main, ["train", str(bad)])
    assert result.exit_code == 1
    assert "optim.lr" in result.output and str(bad) in result.output and "Traceback" not in result.output


def test_resume_needs_out(cli):
    result = CliRunner().invoke(main, ["train", "makemore-bn", "--resume"])
    assert result.exit_code == 2 and "--resume needs --out" in result.output


def test_sample_refuses_a_non_names_run(cli, tmp_path):
    run = tmp_path / "digits"
    cli("train", "digits-mlp", "--set", "train.steps=20", "--out", str(run), "--quiet")
    result = CliRunner().invoke(main, ["sample", str(run)])
    assert result.exit_code == 1 and "not trained on character data" in result.output


def test_eval_of_a_non_run_directory_says_so(tmp_path):
    result = CliRunner().invoke(main, ["eval", str(tmp_path)])
    assert result.exit_code == 1 and "not a babysit run" in result.output


def test_a_bug_keeps_its_traceback_while_a_user_error_is_one_line(tmp_path, monkeypatch):
    import babysit.session

    def broken(*args, **kwargs):
        raise ValueError("a bug in babysit")  # not a BabysitError: must not read as the user's fault

    monkeypatch.setattr(babysit.session, "build_trainer", broken)
    result = CliRunner().invoke(main, ["train", "digits-mlp", "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "a bug in babysit" not in result.output  # the traceback goes to the developer, not "Error: ..."
    user = CliRunner().invoke(main, ["train", "digits-mlp", "--set", "optim.lr=-1"])
    assert user.exit_code == 1 and user.output.startswith("Error: invalid spec") and user.exception.__class__ is SystemExit
