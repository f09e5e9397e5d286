"""train.compile: which setups are captured as a CUDA graph (the rest train eagerly, said once),
and the captured step's body, run eagerly on the CPU, trains exactly as the eager Trainer does.
The capture and replay themselves need CUDA: benchmarks/gpu_check.sh runs them."""
import warnings

import pytest
import torch

from babysit import Callback, build_trainer
from babysit.train import graph as graphs


def _quiet_trainer(tmp_path, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_trainer(spec, tmp_path, progress=False)


def _said(spec, tmp_path):
    """The warnings a run of `spec` gives about train.compile, and its summary."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = build_trainer(spec, tmp_path, progress=False).fit()
    return [str(w.message) for w in caught if "train.compile" in str(w.message)], summary


def test_on_the_cpu_auto_trains_eagerly_in_silence_and_graph_says_why_once(tmp_path, digits_spec):
    said, summary = _said(digits_spec(steps=20), tmp_path / "auto")
    assert said == [] and summary["compile"] == "eager"
    said, summary = _said(digits_spec("train.compile=graph", steps=20), tmp_path / "graph")
    assert len(said) == 1 and "CUDA graphs need a CUDA device" in said[0] and "training eagerly" in said[0]
    assert summary["compile"] == "eager"
    said, _ = _said(digits_spec("train.compile=off", steps=20), tmp_path / "off")
    assert said == []


class EveryStep(Callback):
    def on_step_end(self, trainer, step, loss): ...


@pytest.mark.parametrize("over,reason", [
    ([], None),
    (["optim.name=adam"], None),
    (["optim.name=lbfgs", "train.batch_size=full", "optim.weight_decay=0"], "lbfgs"),
    (["schedule.name=plateau"], "plateau"),
    (["train.precision=fp16"], "fp16"),
    (["data.augment=[{name: crop, padding: 1}]", "model.kind=cnn"], "batches are drawn on the host"),
    (["optim.name=adagrad"], "Adagrad has no capturable step"),
    (["callback"], "callback EveryStep runs at every step"),
])
def test_what_cannot_be_captured_is_named(tmp_path, digits_spec, over, reason):
    callbacks = [EveryStep()] if over == ["callback"] else []
    spec = digits_spec(*[o for o in over if o != "callback"], steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = build_trainer(spec, tmp_path, progress=False, callbacks=callbacks)
    trainer.device = torch.device("cuda")  # the decision only: nothing runs on it
    found = graphs.why_not(trainer)
    assert found is None if reason is None else reason in found, found
    capture, said = graphs.plan(trainer)
    assert capture == (reason is None) and (said is None) == (reason is None)


def test_the_captured_body_trains_exactly_as_the_eager_step(tmp_path, digits_spec, monkeypatch):
    """Momentum, weight decay, clipping, a step schedule, epochs that wrap, Watch's sampled steps
    in between (eager, on the same tensors) and a resume: the same batches, weights and losses."""
    over = ["optim.name=sgd", "optim.lr=0.05", "optim.momentum=0.9", "optim.weight_decay=1e-3",
            "train.grad_clip=1.0", "schedule.name=step", "schedule.milestones=[20]", "train.batch_size=256",
            "watch.every=7"]
    eager = _quiet_trainer(tmp_path / "eager", digits_spec(*over, steps=60))
    eager.fit()
    monkeypatch.setattr(graphs, "plan", lambda trainer: (True, None))
    body = _quiet_trainer(tmp_path / "body", digits_spec(*over, steps=30))
    body.fit()
    assert body.graph is not None and body.sampler.epoch >= 1  # epochs wrapped inside the run
    resumed = build_trainer(digits_spec(*over, steps=60), tmp_path / "body", progress=False, resume=True)
    summary = resumed.fit()
    assert summary["compile"] == "graph"
    # the captured SGD step is torch's fused kernel (it reads a device lr), the eager one foreach:
    # the same arithmetic in another order, 6e-8 apart after 60 steps (float32 rounding)
    for (name, a), b in zip(eager.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert resumed.watch.losses == pytest.approx(eager.watch.losses[30:], abs=1e-5)
    assert [s["step"] for s in resumed.watch.samples] == [s["step"] for s in eager.watch.samples
                                                          if s["step"] > 30]


def test_with_a_captured_step_the_guard_reads_one_window_late_and_still_stops_by_k_plus_20(
        tmp_path, digits_spec, monkeypatch):
    class PoisonAt(Callback):  # a NaN weight at step 61 (the step hook only poisons: nothing is read)
        def on_step_end(self, trainer, step, loss):
            if step == 61:
                with torch.no_grad():
                    trainer.model.out.weight[0, 0] = float("nan")

    monkeypatch.setattr(graphs, "plan", lambda trainer: (True, None))
    spec = digits_spec("train.checkpoint_every=50", "train.log_every=100", "train.eval_every=100", steps=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = build_trainer(spec, tmp_path, callbacks=[PoisonAt()], progress=False, doctor=False)
        summary = trainer.fit()
    assert trainer.graph is not None
    # the guard's check at 70 is read at 80, then one sampled step: the fault at 61 stops at 81
    assert summary["status"] == "failed" and "non-finite" in summary["stopped"]
    assert summary["steps"] == 81 and summary["kept_step"] == 50
