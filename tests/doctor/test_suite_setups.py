"""The doctor suite's setups (benchmarks/broken): every spec validates, every DESIGN code is
expected by some broken setup, every counterpart is a healthy setup, and there are at least 20
broken and 8 healthy ones (issue 5)."""
import sys

import yaml

from babysit.doctor import RULES


def test_setups_cover_every_code_and_load(repo_root, tmp_path):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import doctor_suite as suite
    files = {"blobs": str(tmp_path / "b.npz"), "blobs_raw": str(tmp_path / "r.npz")}
    setups = [{**yaml.safe_load(p.read_text()), "name": p.stem} for p in sorted(suite.HERE.glob("*.yaml"))]
    broken = [s for s in setups if s["expect"]]
    healthy = {s["name"] for s in setups if not s["expect"]}
    assert len(broken) >= 20 and len(healthy) >= 8
    assert {c for s in broken for c in s["expect"]} == set(RULES)
    for s in broken:
        assert ("builder" in s) or s["counterpart"] in healthy, s["name"]
    for s in setups:
        if "builder" not in s:
            spec = suite.build_spec(s, files)
            assert spec.train.steps is not None and spec.train.steps <= 4000, s["name"]  # short budgets


def test_only_a_repair_attempt_counts_and_held_out_setups_exist(repo_root):
    """Review: the broken run itself (attempt 0) counted as repaired when it was already close."""
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import doctor_suite as suite
    broken_close = {"attempt": 0, "val_loss": 1.00, "findings": []}
    worse = {"attempt": 1, "val_loss": 1.30, "findings": []}
    diverged = {"attempt": 2, "val_loss": 0.90, "findings": [{"code": "loss-diverged", "severity": "error"}]}
    assert suite.repaired_val([broken_close]) is None
    assert suite.repaired_val([broken_close, worse, diverged]) == 1.30
    assert suite.repaired_val([broken_close, worse, {**worse, "attempt": 2, "val_loss": 1.1}]) == 1.1
    setups = [{**yaml.safe_load(p.read_text()), "name": p.stem} for p in sorted(suite.HERE.glob("*.yaml"))]
    held = [s for s in setups if s.get("held_out")]
    assert len(held) >= 3 and all(s["expect"] and s["counterpart"] for s in held)
