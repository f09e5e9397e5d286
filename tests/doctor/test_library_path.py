"""A user's plain loop with babysit.Watch (DESIGN.md's snippet) gets the same findings as the
Trainer on the same broken setup: same seed, same model, same data."""
import torch
import torch.nn.functional as F

import babysit
from babysit.data import build_data
from babysit.train.trainer import build_start

STEPS = 600


def _spec():
    # makemore-original shrunk: N(0, 1) weights and biases everywhere (saturated tanh, 5x ln(27) at init)
    return babysit.load_spec("makemore-original", [f"train.steps={STEPS}", "schedule.milestones=[300]",
                                                   "train.eval_every=300", "train.log_every=100",
                                                   "model.hidden=[64]", "watch.every=100"])


def _key(findings):
    return sorted((f.code, f.where) for f in findings if f.severity != "info")


def test_watch_findings_match_the_trainers(tmp_path, device):
    spec = _spec()
    data = build_data(spec.data)
    trainer = babysit.build_trainer(spec, tmp_path / "run", progress=False, data=data)
    trainer.fit()
    doctor = next(cb for cb in trainer.callbacks if type(cb).__name__ == "DoctorCallback")
    from_trainer = _key(doctor.findings)

    _, data, model = build_start(spec, data)  # the same seed gives the same initial weights
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.optim.lr)
    watch = babysit.Watch(model, optimizer, every=spec.watch.every, run_dir=tmp_path / "mine")
    gen = torch.Generator().manual_seed(1)
    x_all, y_all = data.train.x.to(device), data.train.y.to(device)
    for _ in range(STEPS):
        idx = torch.randint(0, len(x_all), (32,), generator=gen)
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watch.step(loss)
    from_loop = _key(watch.findings())

    assert ("init-loss-high", "out") in from_trainer and ("saturated-activations", "act1") in from_trainer
    assert from_loop == from_trainer
    watch.close()  # `babysit doctor runs/mine` reads the same findings back from watch.jsonl
    from_disk = _key(babysit.diagnose(babysit.RunView.from_run_dir(tmp_path / "mine", model=model, finished=True)))
    assert from_disk == from_loop
    f = next(f for f in watch.findings() if f.code == "init-loss-high")
    assert f.evidence["ratio"] > 2 and "output" in f.advice


def test_findings_json_is_written_and_a_divergent_run_stops_on_the_error(tmp_path):
    import json
    # SGD at lr 1.0 with momentum 0.5 on digits: the loss passes 3x its start (2.87) by step ~13
    spec = babysit.load_spec("digits-mlp", ["train.steps=400", "train.eval_every=100", "train.log_every=5",
                                            "train.checkpoint_every=5", "optim.name=sgd", "optim.lr=1.0",
                                            "optim.momentum=0.5", "model.dropout=0"])
    summary = babysit.build_trainer(spec, tmp_path / "run", progress=False).fit()
    saved = json.loads((tmp_path / "run" / "findings.json").read_text())
    assert summary["stopped"] and summary["steps"] < 400
    errors = {f["code"] for f in saved["findings"] if f["severity"] == "error"}
    assert errors & {"loss-diverged", "non-finite"}, saved["findings"]
    assert summary["stopped"].startswith("doctor: loss-diverged at loss")
    # the checkpoint kept is the last one before the stop: finite weights, an earlier step
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] < summary["steps"]
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
