"""The MM3 loss log (LECTURES.md §5), run in full: 200,000 steps per row, minutes each.
Marked slow: CI does not run it; `make test-slow` does (benchmarks/reproduce_makemore.py prints
the same table)."""
import pytest

from babysit import build_trainer, load_spec
from babysit.reference import MM3_LOSS_LOG, MM3_STEPS, MM3_TOLERANCE

REFERENCE_VAL = {preset: val for preset, (_, val) in MM3_LOSS_LOG.items()}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(REFERENCE_VAL))
def test_preset_reproduces_its_reference_val_loss(preset, tmp_path):
    summary = build_trainer(load_spec(preset), tmp_path, progress=False).fit()
    assert summary["steps"] == MM3_STEPS
    assert summary["val_loss"] == pytest.approx(REFERENCE_VAL[preset], abs=MM3_TOLERANCE)
