"""examples/own-model: a user's ResNet-style CNN (digits) and TransformerEncoder (names), each
named by its spec's model.factory, go through `babysit train`, `check`, `search` (3 trials),
`lr-find` and `train --repair` with a bad lr planted by --set, at a reduced size."""
import json

import pytest
import yaml
from click.testing import CliRunner

from babysit.cli import main

SMALL = ["train.steps=60", "train.eval_every=30", "train.log_every=10", "train.checkpoint_every=60",
         "watch.every=10"]
EXAMPLES = {
    "resnet": ["model.args.width=8", "model.args.blocks=1"],
    "transformer": ["model.args.d_model=16", "model.args.layers=1", "train.batch_size=32"],
}
# Adam/AdamW at these rates blows up both networks within the reduced run (measured: the loss
# passes 3x its start, an error finding).
BAD_LR = {"resnet": 5.0, "transformer": 3.0}


def _sets(*items):
    return [a for s in items for a in ("--set", s)]


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(params=sorted(EXAMPLES))
def example(request, repo_root):
    name = request.param
    return name, repo_root / "examples" / "own-model" / f"{name}.yaml", _sets(*SMALL, *EXAMPLES[name])


def test_train_is_healthy(example, tmp_path):
    name, spec, sets = example
    r = _run("train", spec, *sets, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["val_loss"] < 10
    found = json.loads((tmp_path / "run" / "findings.json").read_text())["findings"]
    assert not [f for f in found if f["severity"] == "error"], found
    # the spec in the run folder names the factory by absolute path: it resumes from anywhere
    saved = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())
    assert saved["model"]["factory"].startswith(str(spec.parent.resolve()))
    r = _run("train", spec, *sets, "--set", "train.steps=80", "--out", tmp_path / "run", "--resume", "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 80


def test_check_passes(example):
    name, spec, _ = example  # the network at its spec's size: 300-step tiny-subset fit and lr sweep
    r = _run("check", spec, "--json")
    assert r.exit_code == 0, r.output
    results = {c["name"]: c for c in json.loads(r.output)}
    assert [n for n, c in results.items() if c["status"] == "fail"] == []
    # every module that is not torch's own is gradient-checked: the user's classes are
    checked = results["gradcheck"]["measured"]
    assert "<model>" in checked and (name != "resnet" or "blocks.0" in checked), checked


def test_search_three_trials(example, tmp_path):
    name, spec, sets = example
    r = _run("search", spec, *sets, "--trials", "3", "--out", tmp_path / "search",
             "--set", "search.stages=[{trials: 3, steps: 30}]")
    assert r.exit_code == 0, r.output
    trials = json.loads((tmp_path / "search" / "results.json").read_text())["trials"]
    assert len(trials) == 3
    arg = "model.args.width" if name == "resnet" else "model.args.d_model"
    assert all(arg in t["params"] for t in trials)
    best = yaml.safe_load((tmp_path / "search" / "best.yaml").read_text())
    assert best["model"]["args"][arg.rsplit(".", 1)[1]] in (8, 16, 32, 64)


def test_repair_fixes_a_planted_lr(example, tmp_path):
    name, spec, sets = example
    r = _run("train", spec, *sets, "--set", f"optim.lr={BAD_LR[name]}", "--repair", "--max-repairs", "2",
             "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    log = json.loads((tmp_path / "run" / "repairs.json").read_text())
    first, best = log["attempts"][0], log["attempts"][log["best"]]
    assert any(f["severity"] == "error" for f in first["findings"]), first["findings"]
    assert "optim.lr" in first["next_changes"][0]["change"]
    assert log["best"] > 0 and not any(f["severity"] == "error" for f in best["findings"])


def test_lr_find(repo_root, tmp_path):
    spec = repo_root / "examples" / "own-model" / "resnet.yaml"
    r = _run("lr-find", spec, *_sets(*EXAMPLES["resnet"]), "--steps", "60", "--out", tmp_path / "lr.png")
    assert r.exit_code == 0, r.output
    assert "suggested lr" in r.output and (tmp_path / "lr.png").is_file()
