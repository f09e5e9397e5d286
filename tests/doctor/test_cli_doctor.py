"""`babysit doctor RUN [--json]` and `babysit train SPEC --repair` end to end on a small broken run."""
import json

from click.testing import CliRunner

from babysit.cli import main

SHORT = ["--set", "train.steps=300", "--set", "schedule.milestones=[150]", "--set", "train.eval_every=150",
         "--set", "train.log_every=50", "--set", "model.hidden=[32]", "--set", "watch.every=50", "--quiet"]


def test_train_prints_findings_and_doctor_rereads_them_from_the_record(tmp_path):
    run = tmp_path / "orig"
    r = CliRunner().invoke(main, ["train", "makemore-original", "--out", str(run), *SHORT])
    assert r.exit_code == 0, r.output
    assert "init-loss-high" in r.output and "babysit doctor" in r.output
    written = {(f["code"], f["where"]) for f in json.loads((run / "findings.json").read_text())["findings"]}
    r = CliRunner().invoke(main, ["doctor", str(run), "--json"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.output)
    assert {(f["code"], f["where"]) for f in again} == written
    assert {"init-loss-high", "saturated-activations"} <= {f["code"] for f in again}
    table = CliRunner().invoke(main, ["doctor", str(run)])
    assert "init-loss-high" in table.output and "act1" in table.output and "warning" in table.output


def test_train_repair_fixes_the_spec_and_lists_every_repair(tmp_path):
    run = tmp_path / "rep"
    r = CliRunner().invoke(main, ["train", "makemore-original", "--out", str(run), "--repair",
                                  "--max-repairs", "1", *SHORT])
    assert r.exit_code == 0, r.output
    log = json.loads((run / "repairs.json").read_text())
    assert [a["attempt"] for a in log["attempts"]] == [0, 1]
    fixed = {c["fix"] for c in log["attempts"][1]["changes"]}
    assert fixed >= {"output-scale", "gain-init"}
    assert "model.init.output.scale 1 -> 0.01" in r.output
    assert f"repairs ({len(log['attempts'][1]['changes'])}):" in r.output
    assert log["attempts"][1]["val_loss"] < log["attempts"][0]["val_loss"]
    assert (run / "repair-1" / "spec.yaml").read_text().count("kaiming") == 1


def test_doctor_on_a_directory_without_a_record_says_so(tmp_path):
    r = CliRunner().invoke(main, ["doctor", str(tmp_path)])
    assert r.exit_code != 0 and "no run record" in r.output
