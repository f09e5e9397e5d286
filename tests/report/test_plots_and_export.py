"""`babysit plot`, `babysit stats --json` and `babysit export tensorboard` on a real short run."""
import json

import pytest
from click.testing import CliRunner
from PIL import Image

from babysit import build_trainer, load_spec
from babysit.cli import main
from babysit.watch.table import COLUMNS, WatchRecord

FIGURES = ["activations", "activation_gradients", "weight_gradients", "update_ratio", "depth", "loss", "accuracy"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    spec = load_spec("makemore-deep", ["train.steps=400", "schedule.milestones=[300]", "train.eval_every=100",
                                       "watch.every=50", "model.hidden=[32,32,32]"])
    build_trainer(spec, run_dir, progress=False).fit()
    return run_dir


def test_plot_writes_the_seven_figures(run):
    result = CliRunner().invoke(main, ["plot", str(run)], catch_exceptions=False)
    assert result.exit_code == 0
    for name in FIGURES:
        path = run / "plots" / f"{name}.png"
        assert str(path) in result.output
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 600 and im.height > 300
            assert len(im.convert("L").getcolors(maxcolors=256)) > 20  # drawn, not blank


def test_stats_json_has_the_columns_and_picks_the_step(run):
    result = CliRunner().invoke(main, ["stats", str(run), "--json", "--step", "120"], catch_exceptions=False)
    rows = json.loads(result.output)
    assert [r["layer"] for r in rows if r["kind"] != "param"] == ["act1", "act2", "act3", "out"]
    params = {r["layer"] for r in rows if r["kind"] == "param"}  # every parameter no row above showed
    assert {"bn1.weight", "bn1.bias"} <= params and "out.weight" not in params  # BN gains and shifts
    assert all(r["step"] == 100 for r in rows)  # the sample at or before step 120
    assert set(COLUMNS) <= set(rows[0])
    assert rows[0]["weight"] == "fc1.weight" and [r for r in rows if r["kind"] != "param"][-1]["kind"] == "linear"
    table = CliRunner().invoke(main, ["stats", str(run)]).output
    assert table.startswith("step 400") and "act3" in table and "upd:data" in table


def test_tensorboard_export_reads_back(run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = CliRunner().invoke(main, ["export", "tensorboard", str(run), "--out", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/train", "loss/val", "accuracy/val", "grad_norm", "layers/act1/std"} <= set(tags["scalars"])
    assert "activations/act1" in tags["histograms"] and "weight_grads/fc1.weight" in tags["histograms"]
    record = WatchRecord(run)
    stds = {e.step: e.value for e in acc.Scalars("layers/act1/std")}
    for sample in record.samples:
        act1 = next(r for r in sample["layers"] if r["name"] == "act1")
        assert stds[sample["step"]] == pytest.approx(act1["std"], rel=1e-6)


def test_stats_on_a_run_without_watch_says_so(tmp_path):
    spec = load_spec("digits-mlp", ["train.steps=20", "watch.enabled=false"])
    build_trainer(spec, tmp_path, progress=False).fit()
    result = CliRunner().invoke(main, ["stats", str(tmp_path)])
    assert result.exit_code == 1 and "watch.enabled: false" in result.output
    plots = CliRunner().invoke(main, ["plot", str(tmp_path)]).output  # loss and accuracy still drawn
    assert "loss.png" in plots and "activations.png" not in plots
