"""The MM3 loss log (LECTURES.md §5), run in full: 200,000 steps per row, minutes each.
Marked slow: CI does not run it; `make test-slow` does (benchmarks/reproduce_makemore.py prints
the same table)."""
import pytest

from babysit import build_trainer, load_spec

REFERENCE_VAL = {"makemore-original": 2.1682, "makemore-fix-softmax": 2.13, "makemore-fix-tanh": 2.1027,
                 "makemore-kaiming": 2.1070, "makemore-bn": 2.1048}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(REFERENCE_VAL))
def test_preset_reproduces_its_reference_val_loss(preset, tmp_path):
    summary = build_trainer(load_spec(preset), tmp_path, progress=False).fit()
    assert summary["steps"] == 200_000
    assert summary["val_loss"] == pytest.approx(REFERENCE_VAL[preset], abs=0.03)
