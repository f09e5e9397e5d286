"""makemore-deep at step 1000 (LECTURES.md §3/§5): with BatchNorm every tanh layer has std
0.55-0.75 and under 5% saturation (MM3: 0.63-0.65 and 1.7-2.8%); without BatchNorm (gain 5/3)
the first layer is the most saturated (MM3: ~20% there, ~5% after)."""

from babysit import build_trainer, load_spec
from babysit.watch.table import WatchRecord, layer_rows

STEPS = 1000


def _rows(tmp_path, *overrides):
    spec = load_spec("makemore-deep", [f"train.steps={STEPS}", "schedule.milestones=[900]",
                                       f"train.eval_every={STEPS}", *overrides])
    build_trainer(spec, tmp_path, progress=False).fit()
    record = WatchRecord(tmp_path)
    sample = record.sample_at(STEPS)
    assert sample["step"] == STEPS
    return [r for r in layer_rows(record, sample) if r["kind"] == "tanh"]


def test_batchnorm_net_is_healthy_at_step_1000(tmp_path):
    rows = _rows(tmp_path)
    assert len(rows) == 5
    for r in rows:
        assert 0.55 <= r["std"] <= 0.75, r
        assert r["saturation_pct"] < 5.0, r
        assert 1e-3 < r["grad_std"] < 1e-2, r  # MM3: about 2e-3 in every layer


def test_without_batchnorm_the_first_layer_saturates_most(tmp_path):
    rows = _rows(tmp_path, "model.batchnorm=false", "model.output_batchnorm=false")
    first, later = rows[0]["saturation_pct"], [r["saturation_pct"] for r in rows[1:]]
    assert first > max(later), rows
    assert first > 10.0  # MM3: ~20%
