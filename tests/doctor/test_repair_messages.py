"""Review item 8: what the repair loop and `babysit doctor` say and return at the edges."""
import numpy as np
from click.testing import CliRunner
from doctor_helpers import layer, param, sample, view

import babysit
from babysit.cli import main
from babysit.data import build_data
from babysit.doctor import RULES
from babysit.repair import train_with_repairs
from babysit.spec import spec_from_dict

SHORT = ["train.steps=300", "schedule.milestones=[150]", "train.eval_every=150", "train.log_every=50",
         "model.hidden=[32]", "watch.every=50"]


def _raw_arrays(path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8))
    y = rng.integers(0, 4, 1200)
    x = (centers[y] + rng.normal(size=(1200, 8))) * np.logspace(0, 2, 8) + 20.0  # off-centre, uneven scales
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


def _arrays_spec(path):
    return spec_from_dict({"name": "raw", "data": {"kind": "arrays", "path": str(path)},
                           "model": {"kind": "mlp", "hidden": [16], "activation": "relu"},
                           "optim": {"name": "adam", "lr": 0.001},
                           "train": {"steps": 100, "batch_size": 32, "eval_every": 50, "log_every": 25,
                                     "checkpoint_every": 100}, "watch": {"every": 25}}, "raw")


def test_used_up_repairs_are_reported_at_the_end(tmp_path):
    lines = []
    res = train_with_repairs(babysit.load_spec("makemore-original", SHORT), tmp_path / "run", max_repairs=0,
                             echo=lines.append)
    assert {u["code"] for u in res["unrepaired"]} >= {"init-loss-high", "saturated-activations"}
    assert lines[-1].startswith("max_repairs (0) used up with fixable findings left: ")
    assert "init-loss-high" in lines[-1]


def test_result_spec_is_the_best_attempts(tmp_path):
    # tanh at SGD lr 1.5 trains (val ~2.4); the update-ratio cut to ~0.007 ends worse (~3.0)
    spec = babysit.load_spec("makemore-kaiming", ["train.steps=400", "schedule.milestones=[300]",
                                                  "train.eval_every=200", "train.log_every=5",
                                                  "train.checkpoint_every=10", "model.hidden=[32]",
                                                  "optim.lr=1.5", "watch.every=1000"])
    res = train_with_repairs(spec, tmp_path / "run", max_repairs=1, echo=lambda *_: None)
    a0, a1 = res["attempts"]
    assert a1["val_loss"] > a0["val_loss"] and res["best"] == 0
    assert res["spec"]["optim"]["lr"] == 1.5


def test_a_standardize_fix_takes_effect_with_data_passed_in(tmp_path):
    spec = _arrays_spec(_raw_arrays(tmp_path / "raw.npz"))
    res = train_with_repairs(spec, tmp_path / "run", max_repairs=1, data=build_data(spec.data), echo=lambda *_: None)
    a0, a1 = res["attempts"]
    assert "data-not-centered" in {f["code"] for f in a0["findings"]}
    assert "standardize" in {c["fix"] for c in a1["changes"]}
    # data.preprocess lives in the model, built from the repaired spec: the passed data is standardized
    assert "data-not-centered" not in {f["code"] for f in a1["findings"]}


def test_doctor_falls_back_to_the_record_when_the_data_file_moved(tmp_path):
    path = _raw_arrays(tmp_path / "raw.npz")
    babysit.build_trainer(_arrays_spec(path), tmp_path / "run", progress=False).fit()
    path.rename(tmp_path / "moved.npz")
    r = CliRunner().invoke(main, ["doctor", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "could not be rebuilt" in r.output and "the rules on the record still ran" in r.output


def test_dead_units_advice_blames_the_lr_only_when_the_feeding_weight_moves_fast():
    dead = [layer("act1", kind="relu", saturated=None, dead=0.6), layer("act2", kind="relu", saturated=None)]
    slow = [param("fc1.weight", update=-3.0), param("fc2.weight"), param("out.weight", (27, 10))]
    f = RULES["dead-units"](view(samples=[sample(1), sample(200, dead, slow)]))[0]
    assert "learning rate" not in f.advice and "lr" not in f.advice and "leaky ReLU" in f.advice
    fast = [param("fc1.weight", update=-2.0), param("fc2.weight"), param("out.weight", (27, 10))]
    f = RULES["dead-units"](view(samples=[sample(1), sample(200, dead, fast)]))[0]
    assert "too high a learning rate" in f.advice and "10^-2.0" in f.advice
