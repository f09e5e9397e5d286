"""BabysitCallback in a Lightning fit finds what babysit.Watch finds in a plain loop over the same
model, data and optimizer: the same (code, where) findings on a healthy setup and on one with the
learning rate x100; with stop_on_error, an error finding stops the fit."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import babysit
from babysit.doctor import RunView, diagnose

L = pytest.importorskip("lightning")
from babysit.lightning import BabysitCallback  # noqa: E402

STEPS, EVERY, GOOD_LR = 200, 20, 0.1
CLASSES, FEATURES = 4, 16


def _data():
    g = torch.Generator().manual_seed(0)
    centres = 2 * torch.randn(CLASSES, FEATURES, generator=g)
    y = torch.randint(0, CLASSES, (512,), generator=g)
    x = centres[y] + torch.randn(512, FEATURES, generator=g)
    return x, y


def _loader():
    # one order every epoch (the examples are in random order already): Lightning and a plain loop
    # start their epochs' iterators at different times, which a shuffling generator would see
    return DataLoader(TensorDataset(*_data()), batch_size=32)


class Net(L.LightningModule):
    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.fc1, self.act1 = nn.Linear(FEATURES, 64), nn.Tanh()
        self.fc2, self.act2 = nn.Linear(64, 64), nn.Tanh()
        self.out = nn.Linear(64, CLASSES)

    def forward(self, x):
        return self.out(self.act2(self.fc2(self.act1(self.fc1(x)))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _plain(lr: float) -> list:
    torch.manual_seed(0)
    model = Net(lr)
    opt = model.configure_optimizers()
    watch = babysit.Watch(model, opt, every=EVERY)
    loader, step = _loader(), 0
    while step < STEPS:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            watch.step(loss)
            step += 1
            if step == STEPS:
                break
    x, y = _data()
    checks = babysit.preflight(model, F.cross_entropy, (x, y), checks=["data"])
    return watch.findings(preflight=[r.as_dict() for r in checks])


def _lightning(lr: float, run_dir, **kw) -> tuple[BabysitCallback, "L.Trainer"]:
    torch.manual_seed(0)
    model = Net(lr)
    cb = BabysitCallback(run_dir, every=EVERY, echo=lambda line: None, **{"plots": False, **kw})
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(model, _loader())
    return cb, trainer


def _keys(findings) -> list[tuple]:
    return sorted((f.code, f.where) for f in findings)


@pytest.mark.parametrize("lr", [GOOD_LR, GOOD_LR * 100], ids=["healthy", "lr-x100"])
def test_same_findings_as_a_plain_loop(tmp_path, lr):
    cb, trainer = _lightning(lr, tmp_path / "run")
    assert trainer.global_step == STEPS
    plain = _plain(lr)
    assert _keys(cb.findings) == _keys(plain)
    if lr == GOOD_LR:
        assert not [f for f in plain if f.severity == "error"]
    else:  # the broken setup is found broken, by both
        assert any(f.severity == "error" for f in plain)
    # the run folder is babysit's: the record, the checklist and the findings are on disk
    run = tmp_path / "run"
    assert json.loads((run / "preflight.json").read_text())[0]["name"] == "data"
    written = json.loads((run / "findings.json").read_text())["findings"]
    assert sorted((f["code"], f["where"]) for f in written) == _keys(plain)
    assert _keys(diagnose(RunView.from_run_dir(run, model=Net(lr), finished=True))) == _keys(plain)


def test_stop_on_error_stops_the_fit(tmp_path):
    cb, trainer = _lightning(GOOD_LR * 100, tmp_path / "run", stop_on_error=True, log_every=10, plots=True)
    assert trainer.global_step < STEPS
    assert cb.run.stop_reason.startswith("doctor: ")
    assert json.loads((tmp_path / "run" / "findings.json").read_text())["stopped"]
    assert (tmp_path / "run" / "plots" / "loss.png").is_file()  # `babysit plot`'s figures, written at the end


class NoForward(Net):
    """Everything in training_step, as many LightningModules are written: no forward to probe."""

    forward = L.LightningModule.forward

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.out(self.act2(self.fc2(self.act1(self.fc1(x))))), y)


def test_a_module_without_forward(tmp_path):
    cb = BabysitCallback(tmp_path / "run", plots=False, echo=lambda line: None)
    trainer = L.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(NoForward(GOOD_LR), _loader())
    data = json.loads((tmp_path / "run" / "preflight.json").read_text())[0]
    assert data["status"] == "pass" and data["measured"]["num_classes"] == CLASSES  # from the labels
