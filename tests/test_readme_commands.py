"""Every `babysit` command in the README's shell blocks runs as written, in order, on a fresh
checkout (at a few dozen steps where it trains: the only change the test makes). A command the
README says exits 1 (a checklist that fails) is held to that."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

import babysit.labs
from babysit.cli import main
from babysit.labs.init import InitSize
from babysit.labs.makemore import MakemoreSize

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "train.steps=60", "--set", "train.eval_every=30", "--set", "train.log_every=10",
        "--set", "train.checkpoint_every=30", "--set", "watch.every=10"]
# `babysit lab NAME [--full]` at the labs' test sizes (tests/labs/test_labs.py): the lab's code as
# written, minutes cut to seconds, like train.steps for a training command
LAB_SIZES = {"init": InitSize(examples=300), "makemore": MakemoreSize(steps=300, presets=("makemore-original",))}
EXITS = {"check makemore-original": 1}  # the README: "exits 1 on a failure" (its initial loss is 8x ln C)


def readme_commands() -> list[list[str]]:
    """The `babysit ...` lines of the README's unlabelled code blocks (shell), continuation lines
    joined and comments dropped, each once, in the order they appear."""
    blocks, block, fence = [], None, None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, block = line, []
            else:
                if fence == "```":  # a shell block; ```python and ```yaml ones are not commands
                    blocks.append("\n".join(block))
                fence = None
        elif fence is not None:
            block.append(line)
    commands, seen = [], set()
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if not line.startswith("babysit "):
                continue  # comment lines (with prose that shlex would choke on), make, ...
            words = shlex.split(line, comments=True)
            if words[:1] == ["babysit"] and tuple(words) not in seen:
                seen.add(tuple(words))
                commands.append(words[1:])
    return commands


def shortened(args: list[str]) -> list[str]:
    """The command at a test's budget: fewer steps, members, trials and workers."""
    args = ["2" if a in ("5", "4") and prev in ("--seeds", "--workers") else "3" if prev == "--trials" else a
            for prev, a in zip([""] + args, args)]
    if args[0] in ("train", "finetune"):
        args += FAST + (["--set", "schedule.cycle_steps=20"] if "schedule.name=cosine_restarts" in args else [])
        args += ["--set", "finetune.head_steps=10"] if args[0] == "finetune" else []
        args += ["--max-repairs", "1"] if "--repair" in args else []
    if args[0] == "demo":
        args += ["--steps", "100"]
    if args[0] == "lr-find":
        args += ["--steps", "30"]
    if args[0] == "search":
        args += ["--set", "search.stages=[{trials: 2, steps: 20}, {trials: 1, steps: 30}]"]
    return args + (["--quiet"] if args[0] in ("train", "finetune") else [])


def test_the_readme_shows_the_tour_and_no_placeholder():
    commands = [" ".join(c) for c in readme_commands()]
    assert len(commands) >= 25 and any(c.startswith("demo") for c in commands)
    for c in commands:
        assert not re.search(r"\bRUN\b|my\.yaml|\[--|<", c), c  # real paths, no syntax placeholders


def test_every_readme_command_runs(tmp_path, monkeypatch):
    for folder in ("presets", "examples"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    run_lab = babysit.labs.run_lab
    monkeypatch.setattr(babysit.labs, "run_lab", lambda name, out, full=False, **kw: run_lab(
        name, out, size=LAB_SIZES[name], **kw))
    runner = CliRunner()
    for args in readme_commands():
        result = runner.invoke(main, shortened(args))
        expected = EXITS.get(" ".join(args), 0)
        assert result.exit_code == expected, f"babysit {' '.join(args)}:\n{result.output[-3000:]}\n{result.exception!r}"
