"""train.precision (autocast, a gradient scaler for fp16) and train.deterministic on the CPU; the
CUDA paths of both run in benchmarks/gpu_check.sh."""
import pytest
import torch

from babysit import Callback, build_trainer
from babysit.errors import SpecError


class OutputDtype(Callback):
    """The dtype of the model's output in training steps (what autocast made of it)."""

    def on_train_begin(self, trainer) -> None:
        self.dtypes = set()
        trainer.model.out.register_forward_hook(
            lambda m, i, o: self.dtypes.add(o.dtype) if torch.is_grad_enabled() else None)


def test_bf16_autocasts_the_forward_and_keeps_weights_and_watch_in_float32(tmp_path, digits_spec):
    seen = OutputDtype()
    summary = build_trainer(digits_spec("train.precision=bf16", steps=120), tmp_path, callbacks=[seen],
                            progress=False).fit()
    trainer_dtypes = seen.dtypes
    assert trainer_dtypes == {torch.bfloat16}
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    assert summary["train_loss"] < 0.5 * 2.3  # from ln(10) at the start: it learns in bf16
    from babysit.watch.record import read_events
    sample = read_events(tmp_path, "sample", filename="watch.jsonl")[-1]
    assert all(isinstance(r["std"], float) and r["std"] > 0 for r in sample["layers"])


def test_fp16_uses_a_gradient_scaler_that_survives_a_resume(tmp_path, digits_spec):
    spec = digits_spec("train.precision=fp16", steps=60)
    trainer = build_trainer(spec, tmp_path, progress=False)
    assert trainer.precision.scaler is not None
    summary = trainer.fit()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["precision"]
    assert saved["scale"] > 0 and summary["train_loss"] < 2.3
    more = build_trainer(digits_spec("train.precision=fp16", steps=80), tmp_path, progress=False, resume=True)
    more.fit()
    assert more.precision.scaler.get_scale() > 0 and more.step == 80


def test_fp16_with_lbfgs_is_a_spec_error(digits_spec):
    with pytest.raises(SpecError, match="fp16.*lbfgs.*bf16 or fp32"):
        digits_spec("optim.name=lbfgs", "train.batch_size=full", "optim.weight_decay=0", "train.precision=fp16")
    with pytest.raises(SpecError, match="precision: Input should be 'fp32', 'bf16' or 'fp16'"):
        digits_spec("train.precision=half")


class Seen(Callback):
    def on_train_begin(self, trainer) -> None:
        self.on = torch.are_deterministic_algorithms_enabled()
        self.cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark


def test_deterministic_is_on_while_training_and_off_again_after(tmp_path, digits_spec, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = Seen()
    build_trainer(digits_spec("train.deterministic=true", steps=20), tmp_path / "on", callbacks=[seen],
                  progress=False).fit()
    assert seen.on and seen.cudnn == (True, False)
    import os
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.are_deterministic_algorithms_enabled()  # put back after the run
    build_trainer(digits_spec(steps=20), tmp_path / "off", callbacks=[seen], progress=False).fit()
    assert not seen.on
