"""The Trainer end to end on small real data: every optimizer learns, early stopping restores the
best weights, a blow-up stops the run and keeps the last good checkpoint, hooks are called."""
import json
import math

import pytest
import torch

from babysit import Callback, TrainingError, build_trainer
from babysit.layout import CHECKPOINT
from babysit.watch.record import read_events

LN10 = math.log(10)  # diffuse softmax over 10 digits (LECTURES.md §2: 2.30)


@pytest.mark.parametrize("optim", [
    ["optim.name=sgd", "optim.lr=0.02", "optim.momentum=0.9", "optim.nesterov=true"],
    ["optim.name=adam", "optim.lr=0.001"],
    ["optim.name=adamw", "optim.lr=0.001", "optim.weight_decay=0.01"],
    ["optim.name=rmsprop", "optim.lr=0.001"],
    ["optim.name=adagrad", "optim.lr=0.05"],
])
def test_every_optimizer_learns_digits(tmp_path, digits_spec, optim):
    summary = build_trainer(digits_spec(*optim), tmp_path, progress=False).fit()
    assert summary["val_loss"] < 0.5 * LN10, summary
    assert summary["val_acc"] > 0.85


def test_lbfgs_full_batch_learns_digits(tmp_path, digits_spec):
    spec = digits_spec("optim.name=lbfgs", "optim.lr=1", "optim.weight_decay=0", "train.batch_size=full",
                       "model.dropout=0", steps=20)
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    assert summary["train_loss"] < 0.1 and summary["val_acc"] > 0.9


def test_summary_and_record_are_written(tmp_path, tiny_names_spec):
    summary = build_trainer(tiny_names_spec(), tmp_path, progress=False).fit()
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("train_loss", "val_loss", "val_acc", "steps", "wall_s"):
        assert key in on_disk
    assert on_disk["steps"] == 300 and on_disk["val_loss"] == summary["val_loss"]
    train_events = read_events(tmp_path, "train")
    assert [e["step"] for e in train_events] == list(range(50, 301, 50))
    assert train_events[0]["train_loss"] < 3.4  # near ln 27 = 3.29 at the start, then falling
    assert [e["step"] for e in read_events(tmp_path, "eval")] == [100, 200, 300]
    assert (tmp_path / "spec.yaml").exists() and (tmp_path / CHECKPOINT).exists()


def test_step_schedule_is_applied_in_training(tmp_path, tiny_names_spec):
    build_trainer(tiny_names_spec(), tmp_path, progress=False).fit()
    lrs = {e["step"]: e["lr"] for e in read_events(tmp_path, "train")}
    assert lrs[100] == pytest.approx(0.1) and lrs[200] == pytest.approx(0.01)


def test_early_stopping_restores_the_best_weights(tmp_path, digits_spec):
    # A wide net at a high lr without regularization overfits 1,437 digits fast: val loss turns up.
    spec = digits_spec("model.hidden=[512]", "model.dropout=0", "optim.weight_decay=0", "optim.lr=0.01",
                       "train.eval_every=20", "train.early_stopping={patience: 3}", steps=2000)
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    evals = read_events(tmp_path, "eval")
    best = min(evals, key=lambda e: e["val_loss"])
    assert summary["stopped"].startswith("early stopping") and summary["steps"] < 2000
    assert summary["restored_best_step"] == best["step"]
    assert summary["val_loss"] == pytest.approx(best["val_loss"], abs=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits_spec):
    class PoisonAt(Callback):  # a NaN weight at step 60: after the checkpoint at 50, before the one at 75
        def on_step_end(self, trainer, step, loss):
            if step == 60:
                with torch.no_grad():
                    trainer.model.out.weight[0, 0] = float("nan")

    spec = digits_spec("train.checkpoint_every=25", "train.log_every=25", steps=400)
    summary = build_trainer(spec, tmp_path, callbacks=[PoisonAt()], progress=False).fit()
    # the guard reads the loss every 10 steps and samples one more step: stopped within 60 + 20
    assert "non-finite" in summary["stopped"] and 60 < summary["steps"] <= 80
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 50
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_an_existing_run_is_never_overwritten(tmp_path, tiny_names_spec):
    build_trainer(tiny_names_spec(steps=100), tmp_path, progress=False).fit()
    with pytest.raises(TrainingError, match="already holds a run"):
        build_trainer(tiny_names_spec(steps=100), tmp_path, progress=False).fit()


def test_gradient_clipping_bounds_the_global_norm(tmp_path, digits_spec):
    class GradNorm(Callback):
        norms = []

        def on_step_end(self, trainer, step, loss):
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    spec = digits_spec("train.grad_clip=0.05", "optim.name=sgd", "optim.lr=0.1", steps=50)
    build_trainer(spec, tmp_path, callbacks=[GradNorm()], progress=False).fit()
    assert len(GradNorm.norms) == 50 and max(GradNorm.norms) <= 0.05 + 1e-5


def test_only_overridden_hooks_run_in_the_hot_path():
    class OnlyEval(Callback):
        def on_eval_end(self, trainer, step, metrics): ...

    assert not OnlyEval().overrides("on_step_end") and OnlyEval().overrides("on_eval_end")


def test_epochs_count_full_passes_without_the_partial_batch(tmp_path, digits_spec):
    spec = digits_spec("train.steps=null", "train.epochs=2", "train.batch_size=100")
    summary = build_trainer(spec, tmp_path, progress=False).fit()
    assert summary["steps"] == 2 * (1437 // 100)  # digits train split: 1,437 examples


def test_device_auto_picks_what_torch_sees_and_a_missing_gpu_is_a_clear_error():
    from babysit.build import select_device

    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="torch sees no CUDA device"):
            select_device("cuda")


def test_two_callbacks_of_one_class_keep_their_own_state_across_a_resume(tmp_path, digits_spec):
    class Counter(Callback):
        def __init__(self, every):
            self.every, self.seen = every, 0

        def on_step_end(self, trainer, step, loss):
            self.seen += step % self.every == 0

        def state_dict(self):
            return {"seen": self.seen}

        def load_state_dict(self, state):
            self.seen = state["seen"]

    build_trainer(digits_spec(steps=50), tmp_path, callbacks=[Counter(1), Counter(10)], progress=False).fit()
    again = [Counter(1), Counter(10)]
    build_trainer(digits_spec(steps=60), tmp_path, callbacks=again, progress=False, resume=True).fit()
    assert [c.seen for c in again] == [60, 6]  # each continued from its own count
