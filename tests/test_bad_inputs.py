"""Malformed inputs, as a new user makes them: each gets one clear line that names the problem
(`Error: ...`, exit code 1, or click's usage error, 2), never a traceback, and loses nothing
(a run folder it touches is unchanged). Library calls raise a one-line error the same way."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import babysit
from babysit.cli import main
from babysit.errors import BabysitWarning

RUNS: dict[str, Path] = {}  # run folders trained once for the cases that need one


def spec_file(tmp: Path, text: str, name: str = "bad.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def npz(tmp: Path, name: str = "data.npz", **arrays) -> str:
    path = tmp / name
    np.savez(path, **arrays)
    return str(path)


def blobs(n=200, d=4, classes=3, seed=0):
    g = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return (g.normal(size=(n, d)) + y[:, None]).astype("float32"), y


def arrays(path: str, *more: str) -> list[str]:
    """`babysit train` on a small MLP over the arrays at `path`."""
    return ["train", "digits-mlp", "--set", "data.kind=arrays", "--set", f"data.path={path}",
            "--set", "train.steps=20", "--quiet", *more]


def images(tmp: Path, classes: dict[str, list[tuple[int, int]]]) -> str:
    root = tmp / "imgs"
    for name, sizes in classes.items():
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            Image.fromarray(np.full(size + (3,), 20 * i % 250, dtype=np.uint8)).save(root / name / f"{i}.png")
    return str(root)


def csv_file(tmp: Path, text: str) -> str:
    path = tmp / "table.csv"
    path.write_text(text)
    return str(path)


def run(name: str, tmp_factory, *overrides: str) -> Path:
    """A small finished run, trained once per test session."""
    if name not in RUNS:
        out = tmp_factory.mktemp("runs") / name
        base = "makemore-bn" if name == "names" else "digits-mlp"
        spec = babysit.load_spec(base, ["train.steps=30", "train.eval_every=30", "train.log_every=10",
                                        "train.checkpoint_every=30", "watch.every=10", "model.hidden=[16]", *overrides])
        babysit.build_trainer(spec, out, progress=False).fit()
        RUNS[name] = out
    return RUNS[name]


def digest(folder: Path) -> dict:
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


S = spec_file
NL = "\n"
CASES = [  # (id, args from a tmp folder, what the one line must say)
    # --- specs: YAML, keys, types, ranges -------------------------------------------------------
    ("yaml-syntax", lambda t: ["train", S(t, "model: {hidden: [1, 2\n")], "not valid YAML"),
    ("top-level-list", lambda t: ["train", S(t, "- 1\n- 2\n")], "top level must be a mapping"),
    ("unknown-section", lambda t: ["train", S(t, "optimizer: {lr: 0.1}\n")], "optimizer: unknown key"),
    ("unknown-key", lambda t: ["train", S(t, "optim: {learning_rate: 0.1}\n")], "optim.learning_rate: unknown key"),
    ("lr-negative", lambda t: ["train", S(t, "optim: {lr: -0.1}\n")], "optim.lr"),
    ("lr-zero", lambda t: ["train", S(t, "optim: {lr: 0}\n")], "optim.lr"),
    ("lr-text", lambda t: ["train", S(t, "optim: {lr: fast}\n")], "optim.lr"),
    ("lr-bool", lambda t: ["train", S(t, "optim: {lr: true}\n")], "lr must be a number"),
    ("steps-fraction", lambda t: ["train", S(t, "train: {steps: 10.5}\n")], "train.steps"),
    ("steps-zero", lambda t: ["train", S(t, "train: {steps: 0}\n")], "train.steps"),
    ("steps-and-epochs", lambda t: ["train", S(t, "train: {steps: 10, epochs: 2}\n")], "not both"),
    ("no-steps-no-epochs", lambda t: ["train", S(t, "train: {steps: null}\n")], "set train.steps or train.epochs"),
    ("batch-zero", lambda t: ["train", S(t, "train: {steps: 10, batch_size: 0}\n")], "train.batch_size"),
    ("batch-word", lambda t: ["train", S(t, "train: {steps: 10, batch_size: all}\n")], "train.batch_size"),
    ("eval-every-zero", lambda t: ["train", S(t, "train: {steps: 10, eval_every: 0}\n")], "train.eval_every"),
    ("log-every-zero", lambda t: ["train", S(t, "train: {steps: 10, log_every: 0}\n")], "train.log_every"),
    ("grad-clip-negative", lambda t: ["train", S(t, "train: {steps: 10, grad_clip: -1}\n")], "train.grad_clip"),
    ("device-bogus", lambda t: ["train", S(t, "train: {steps: 10, device: tpu}\n")], "device must be auto, cpu or cuda"),
    ("warmup-too-long", lambda t: ["train", S(t, "train: {steps: 10}\nschedule: {warmup_steps: 10}\n")],
     "warmup_steps (10) must be below train.steps"),
    ("milestones-decreasing", lambda t: ["train", S(t, "schedule: {name: step, milestones: [50, 20]}\n")],
     "positive and increasing"),
    ("milestones-mixed", lambda t: ["train", S(t, "schedule: {name: step, milestones: [0.5, 800]}\n")],
     "use one kind"),
    ("step-without-milestones", lambda t: ["train", S(t, "schedule: {name: step}\n")], "needs milestones"),
    ("schedule-unknown", lambda t: ["train", S(t, "schedule: {name: linear}\n")], "schedule.name"),
    ("optimizer-unknown", lambda t: ["train", S(t, "optim: {name: adamax}\n")], "optim.name"),
    ("activation-unknown", lambda t: ["train", S(t, "model: {activation: swish}\n")], "model.activation"),
    ("nesterov-no-momentum", lambda t: ["train", S(t, "optim: {nesterov: true}\n")], "nesterov needs momentum"),
    ("betas-out-of-range", lambda t: ["train", S(t, "optim: {name: adam, betas: [0.9, 1.5]}\n")], "betas"),
    ("momentum-one", lambda t: ["train", S(t, "optim: {momentum: 1.0}\n")], "optim.momentum"),
    ("lbfgs-minibatch", lambda t: ["train", S(t, "optim: {name: lbfgs}\n")], "lbfgs' is for full-batch"),
    ("lbfgs-weight-decay", lambda t: ["train", S(t, "optim: {name: lbfgs, weight_decay: 0.01}\n"
                                                    "train: {steps: 10, batch_size: full}\n")], "no weight_decay"),
    ("dropout-one", lambda t: ["train", S(t, "model: {dropout: 1.0}\n")], "model.dropout"),
    ("hidden-zero", lambda t: ["train", S(t, "model: {hidden: [0]}\n")], "hidden widths must be >= 1"),
    ("init-unknown", lambda t: ["train", S(t, "model: {init: {hidden: {weight: he}}}\n")],
     "model.init.hidden.weight"),
    ("embed-on-digits", lambda t: ["train", S(t, "data: {kind: digits}\nmodel: {embed_dim: 8}\n")],
     "embed_dim is for character data"),
    ("names-cnn", lambda t: ["train", S(t, "model: {kind: cnn}\n")], "names data needs model.kind 'mlp'"),
    ("names-embed-null", lambda t: ["train", S(t, "model: {embed_dim: null}\n")], "model.embed_dim must be set"),
    ("names-augment", lambda t: ["train", S(t, "data: {augment: [{name: crop}]}\n")], "needs image inputs"),
    ("names-zca", lambda t: ["train", S(t, "data: {preprocess: zca}\n")], "needs real-valued inputs"),
    ("names-classes", lambda t: ["train", S(t, "data: {classes: [1, 2]}\n")], "classes is for labelled data"),
    ("pca-without-k", lambda t: ["train", S(t, "data: {kind: digits, preprocess: pca}\n")], "pca_components"),
    ("k-without-pca", lambda t: ["train", S(t, "data: {kind: digits, pca_components: 4}\n")],
     "only used with data.preprocess pca"),
    ("split-sum", lambda t: ["train", S(t, "data: {split: [0.5, 0.3, 0.1]}\n")], "summing to 1"),
    ("split-no-val", lambda t: ["train", S(t, "data: {split: [1.0, 0.0, 0.0]}\n")], "non-empty train and val"),
    ("classes-one", lambda t: ["train", S(t, "data: {kind: digits, classes: [3]}\n")], "at least 2 distinct labels"),
    ("augment-unknown", lambda t: ["train", S(t, "data: {kind: digits, augment: [{name: rotate}]}\n")],
     "data.augment"),
    ("augment-bad-scale", lambda t: ["train", S(t, "data: {kind: digits, augment: [{name: resized_crop, "
                                                   "scale: [0.9, 0.1]}]}\n")], "scale must be (lo, hi)"),
    ("arrays-no-path", lambda t: ["train", S(t, "data: {kind: arrays}\nmodel: {embed_dim: null}\n")],
     "needs data.path"),
    ("csv-no-target", lambda t: ["train", S(t, "data: {kind: arrays, path: t.csv}\nmodel: {embed_dim: null}\n")],
     "name its label column with data.target"),
    ("target-not-csv", lambda t: ["train", S(t, "data: {kind: digits, target: label}\n")], "data.target"),
    ("snapshots-constant", lambda t: ["train", S(t, "train: {steps: 10, snapshots: true}\n")],
     "snapshots needs schedule.name: cosine_restarts"),
    ("regularizer-unknown", lambda t: ["train", S(t, "train: {steps: 10, regularizer: {name: l3}}\n")],
     "unknown regularizer 'l3'"),
    ("ema-decay-one", lambda t: ["train", S(t, "train: {steps: 10, ema: {decay: 1.0}}\n")], "train.ema.decay"),
    ("watch-every-zero", lambda t: ["train", S(t, "watch: {every: 0}\n")], "watch.every"),
    ("watch-bins", lambda t: ["train", S(t, "watch: {bins: 2}\n")], "watch.bins"),
    ("finetune-factor", lambda t: ["train", S(t, "finetune: {body_lr_factor: 0}\n")], "finetune.body_lr_factor"),
    ("set-no-equals", lambda t: ["train", "digits-mlp", "--set", "optim.lr"], "--set expects key.path=value"),
    ("set-into-value", lambda t: ["train", "digits-mlp", "--set", "optim.lr.x=1"], "is a value, not a section"),
    ("set-bad-yaml", lambda t: ["train", "digits-mlp", "--set", "model.hidden=[1,"], "not valid YAML"),
    ("no-such-spec", lambda t: ["train", "digits-mpl"], "no spec file 'digits-mpl' and no preset"),
    # --- search sections ------------------------------------------------------------------------
    ("search-missing", lambda t: ["search", "digits-mlp", "--out", str(t / "s")], "has no search: section"),
    ("search-bad-path", lambda t: ["search", S(t, "train: {steps: 50}\nsearch: {params: {optim.rate: "
                                                 "{type: log_uniform, low: 0.01, high: 1}}, stages: [{trials: 2, steps: 10}]}\n"),
                                   "--out", str(t / "s")], "search.params.optim.rate"),
    ("search-low-high", lambda t: ["search", S(t, "search: {params: {optim.lr: {type: uniform, low: 1, "
                                                 "high: 0.1}}}\n")], "low must be below high"),
    ("search-log-zero", lambda t: ["search", S(t, "search: {params: {optim.lr: {type: log_uniform, low: 0, "
                                                  "high: 1}}}\n")], "needs low > 0"),
    ("search-grid-trials", lambda t: ["search", S(t, "search: {params: {optim.lr: {type: log_uniform, low: 0.01, "
                                                     "high: 1}}, sampler: grid, stages: [{trials: 3, steps: 9}]}\n")],
     "sampler 'grid' runs every grid point"),
    ("search-trials-few", lambda t: ["search", S(t, "train: {steps: 50}\nsearch: {params: {optim.lr: {type: "
                                                    "log_uniform, low: 0.01, high: 1}}}\n"), "--trials", "1",
                                     "--out", str(t / "s")], "--trials 1 is fewer than the 2 stages"),
    ("search-choices-empty", lambda t: ["search", S(t, "search: {params: {model.activation: {type: categorical, "
                                                      "choices: []}}}\n")], "needs choices"),
    # --- data -------------------------------------------------------------------------------------
    ("npz-missing", lambda t: arrays(str(t / "nope.npz")), "does not exist"),
    ("npz-suffix", lambda t: arrays(spec_file(t, "1,2\n", "data.txt")), "unsupported suffix '.txt'"),
    ("npz-corrupt", lambda t: arrays(spec_file(t, "not a zip", "broken.npz")), "cannot read"),
    ("npz-keys", lambda t: arrays(npz(t, a=np.zeros((4, 2)))), "expected keys 'x' and 'y'"),
    ("npz-lengths", lambda t: arrays(npz(t, x=np.zeros((10, 2), "float32"), y=np.zeros(9, "int64"))),
     "10 inputs but 9 labels"),
    ("npz-float-labels", lambda t: arrays(npz(t, x=np.zeros((10, 2), "float32"), y=np.zeros(10, "float32"))),
     "must be integer class indices"),
    ("npz-2d-labels", lambda t: arrays(npz(t, x=np.zeros((10, 2), "float32"), y=np.zeros((10, 2), "int64"))),
     "one index per example"),
    ("npz-1d-inputs", lambda t: arrays(npz(t, x=blobs()[0][:, 0], y=blobs()[1])), "reshape x to"),
    ("npz-nan", lambda t: arrays(npz(t, x=np.where(np.arange(800).reshape(200, 4) == 5, np.nan, blobs()[0]),
                                     y=blobs()[1])), "NaN/Inf input values"),
    ("npz-inf", lambda t: arrays(npz(t, x=np.where(np.arange(800).reshape(200, 4) == 9, np.inf, blobs()[0]),
                                     y=blobs()[1])), "NaN/Inf input values"),
    ("npz-one-class", lambda t: arrays(npz(t, x=blobs()[0], y=np.zeros(200, "int64"))),
     "same class (class 0: 160)"),
    ("npz-sparse-ids", lambda t: arrays(npz(t, x=blobs()[0], y=np.where(blobs()[1] == 0, 0, 1000)[:200]
                                            .astype("int64"))), "999 of 1001 classes have no training example"),
    ("npz-negative-label", lambda t: arrays(npz(t, x=blobs()[0], y=blobs()[1] - 1), "--set", "data.num_classes=3"),
     "label -1"),
    ("npz-label-past-classes", lambda t: arrays(npz(t, x=blobs()[0], y=blobs()[1]), "--set", "data.num_classes=2"),
     "out of range [0, 1] for 2 classes"),
    ("presplit-pairs", lambda t: arrays(npz(t, x_train=blobs()[0], y_train=blobs()[1], x_val=blobs()[0],
                                            y_val=blobs()[1], x_test=blobs()[0])), "x_test and y_test come in pairs"),
    ("presplit-shapes", lambda t: arrays(npz(t, x_train=blobs()[0], y_train=blobs()[1], x_val=blobs(d=3)[0],
                                             y_val=blobs()[1])), "x_val examples have shape (3,)"),
    ("presplit-val-label", lambda t: arrays(npz(t, x_train=blobs()[0], y_train=blobs()[1], x_val=blobs()[0],
                                                y_val=blobs(classes=5)[1])), "val split: label 3"),
    ("classes-out-of-range", lambda t: ["train", "digits-mlp", "--set", "data.classes=[1,12]"],
     "data.classes [12] out of range"),
    ("csv-missing-column", lambda t: arrays(csv_file(t, "a,b,kind\n1,2,x\n3,4,y\n"), "--set", "data.target=label"),
     "no column 'label'"),
    ("csv-text-feature", lambda t: arrays(csv_file(t, "a,b,label\n1,two,x\n3,4,y\n"), "--set", "data.target=label"),
     "'two' is not a number"),
    ("csv-ragged", lambda t: arrays(csv_file(t, "a,b,label\n1,2,x\n3,y\n"), "--set", "data.target=label"),
     "line 3: 2 cells, but the header has 3"),
    ("csv-empty", lambda t: arrays(csv_file(t, "a,b,label\n"), "--set", "data.target=label"),
     "needs a header row and at least one data row"),
    ("csv-one-class", lambda t: arrays(csv_file(t, "a,b,label\n" + "".join(f"{i},{i},x\n" for i in range(40))),
                                       "--set", "data.target=label"), "same class"),
    ("images-missing", lambda t: ["train", "digits-cnn", "--set", "data.kind=images", "--set",
                                  f"data.path={t / 'none'}"], "is not a folder of class sub-folders"),
    ("images-no-classes", lambda t: ["train", "digits-cnn", "--set", "data.kind=images", "--set",
                                     f"data.path={_empty(t)}"], "no class sub-folders"),
    ("images-one-class", lambda t: ["train", "digits-cnn", "--set", "data.kind=images", "--set",
                                    f"data.path={images(t, {'cat': [(8, 8)] * 12})}"], "same class"),
    ("images-sizes", lambda t: ["train", "digits-cnn", "--set", "data.kind=images", "--set",
                                f"data.path={images(t, {'a': [(8, 8)] * 6, 'b': [(8, 8), (9, 9)]})}"],
     "set data.image_size"),
    ("names-file-dot", lambda t: ["train", "makemore-bn", "--set", "data.path=" + spec_file(t, NL.join(["ann", "b.b"]),
                                                                                             "n.txt")],
     "reserved as the end token"),
    ("names-file-empty", lambda t: ["train", "makemore-bn", "--set", "data.path=" + spec_file(t, NL, "n.txt")],
     "holds no names"),
    # --- commands -------------------------------------------------------------------------------
    ("resume-without-out", lambda t: ["train", "digits-mlp", "--resume"], "--resume needs --out"),
    ("resume-nothing", lambda t: ["train", "digits-mlp", "--out", str(t / "empty"), "--resume"], "no checkpoint at"),
    ("seeds-and-repair", lambda t: ["train", "digits-mlp", "--seeds", "2", "--repair"], "do not combine"),
    ("seeds-and-resume", lambda t: ["train", "digits-mlp", "--seeds", "2", "--resume", "--out", str(t)],
     "--resume continues one run"),
    ("repair-and-resume", lambda t: ["train", "digits-mlp", "--repair", "--resume", "--out", str(t)],
     "cannot be combined with --resume"),
    ("seeds-zero", lambda t: ["train", "digits-mlp", "--seeds", "0"], "Invalid value for '--seeds'"),
    ("out-through-file", lambda t: ["train", "digits-mlp", "--out", str(Path(S(t, "x", "file")) / "run")],
     "a part of the path is a file"),
    ("out-is-file", lambda t: ["train", "digits-mlp", "--out", S(t, "x", "file")], "a file stands where a folder"),
    ("eval-not-a-run", lambda t: ["eval", str(t)], "is not a babysit run"),
    ("eval-corrupt", lambda t: ["eval", str(_corrupt_run(t))], "is corrupt or truncated"),
    ("ensemble-not-a-run", lambda t: ["ensemble", str(t)], "neither a babysit run"),
    ("stats-not-a-run", lambda t: ["stats", str(t)], "holds no sampled step"),
    ("plot-empty", lambda t: ["plot", str(t)], "holds no run record"),
    ("export-empty", lambda t: ["export", "tensorboard", str(t)], "holds no run record"),
    ("doctor-empty", lambda t: ["doctor", str(t)], "holds no run record"),
    ("lr-find-steps-zero", lambda t: ["lr-find", "digits-mlp", "--steps", "0"], "Invalid value for '--steps'"),
    ("lr-find-bounds", lambda t: ["lr-find", "digits-mlp", "--start", "1", "--end", "0.1",
                                  "--out", str(t / "lr.png")], "needs 0 < start < end"),
    ("lr-find-out-through-file", lambda t: ["lr-find", "digits-mlp", "--out", str(Path(S(t, "x", "f")) / "lr.png")],
     "cannot create the folder"),
    ("explain-unknown", lambda t: ["explain", "loss-exploded"], "unknown finding code 'loss-exploded'"),
    ("check-bad-spec", lambda t: ["check", S(t, "optim: {lr: -1}\n")], "optim.lr"),
    ("finetune-body", lambda t: ["finetune", str(t / "nowhere"), "digits-mlp"], "does not exist"),
]


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _corrupt_run(tmp: Path) -> Path:
    folder = tmp / "corrupt"
    folder.mkdir()
    (folder / "spec.yaml").write_text(babysit.load_spec("digits-mlp").model_dump_json())
    (folder / "checkpoint.pt").write_bytes(b"\x80\x02 truncated")
    return folder


def one_line_error(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize("case, args, says", CASES, ids=[c[0] for c in CASES])
def test_a_malformed_input_gets_one_clear_line(tmp_path, monkeypatch, case, args, says):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(CliRunner().invoke(main, args(tmp_path)))
    assert says in line, line


RUN_CASES = [  # (id, args for a finished run, what the line must say): the run must stay as it was
    ("sample-negative", "names", lambda r: ["sample", str(r), "-n", "-3"], "Invalid value for '-n'"),
    ("sample-not-names", "digits", lambda r: ["sample", str(r)], "was not trained on character data"),
    ("eval-ema-missing", "digits", lambda r: ["eval", str(r), "--weights", "ema"], "has no ema.pt"),
    ("eval-tta-flat", "names", lambda r: ["eval", str(r), "--tta", "flip"], "needs image inputs"),
    ("stats-step-before", "digits", lambda r: ["stats", str(r), "--step", "-1"], "no sample at or before step -1"),
    ("resume-changed-model", "digits", lambda r: ["train", "digits-mlp", "--set", "model.hidden=[32]",
                                                   "--set", "train.steps=60", "--out", str(r), "--resume"],
     "with a different model section"),
    ("train-over-a-run", "digits", lambda r: ["train", "digits-mlp", "--out", str(r)], "already holds a run"),
    ("ensemble-different-data", "digits", lambda r: ["ensemble", str(r), str(RUNS["names"])], "different data"),
    ("finetune-other-body", "digits", lambda r: ["finetune", str(r), "digits-mlp", "--set", "model.hidden=[64]",
                                                  "--out", str(r.parent / "ft")], "body of the new spec's model differs"),
    ("finetune-head-steps", "digits", lambda r: ["finetune", str(r), "digits-mlp", "--set", "model.hidden=[16]",
                                                  "--set", "train.steps=10", "--set", "finetune.head_steps=50",
                                                  "--out", str(r.parent / "ft2")], "head_steps (50) exceeds"),
]


@pytest.mark.parametrize("case, which, args, says", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_a_malformed_command_on_a_run_changes_nothing(tmp_path_factory, case, which, args, says):
    run("names", tmp_path_factory)
    folder = run(which, tmp_path_factory)
    before = digest(folder)
    line = one_line_error(CliRunner().invoke(main, args(folder)))
    assert says in line, line
    assert digest(folder) == before


def _dict_model():
    class Dict(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return {"logits": self.fc(x)}
    return Dict()


LIBRARY_CASES = [  # (id, call, error type, what the message must say)
    ("preflight-dict-output", lambda: babysit.preflight(_dict_model(), torch.nn.functional.cross_entropy,
                                                        (torch.randn(20, 4), torch.randint(0, 3, (20,)))),
     babysit.BabysitError, "returned a dict"),
    ("preflight-lengths", lambda: babysit.preflight(torch.nn.Linear(4, 3), None,
                                                    (torch.randn(20, 4), torch.randint(0, 3, (19,)))),
     ValueError, "20 inputs but 19 labels"),
    ("preflight-float-labels", lambda: babysit.preflight(torch.nn.Linear(4, 3), None,
                                                         (torch.randn(20, 4), torch.rand(20))),
     ValueError, "labels must be integer class indices"),
    ("preflight-unknown-check", lambda: babysit.preflight(torch.nn.Linear(4, 3), None,
                                                          (torch.randn(20, 4), torch.randint(0, 3, (20,))),
                                                          checks=["data", "overfit"]),
     ValueError, "unknown check 'overfit'"),
    ("watch-every-zero", lambda: babysit.Watch(torch.nn.Linear(2, 2), every=0), ValueError, "every must be >= 1"),
    ("gradcheck-no-inputs", lambda: babysit.gradcheck(torch.nn.Linear(2, 2)), ValueError, "at least one input"),
    ("diagnose-unknown-code", lambda: babysit.diagnose(babysit.RunView(), ["loss-exploded"]), ValueError,
     "unknown finding rule 'loss-exploded'"),
    ("evaluate-empty", lambda: __import__("babysit.train.evaluate", fromlist=["evaluate"]).evaluate(
        torch.nn.Linear(2, 2), __import__("babysit.data", fromlist=["Split"]).Split(torch.zeros(0, 2),
                                                                                   torch.zeros(0, dtype=torch.long))),
     ValueError, "empty split"),
    ("maxout-one-piece", lambda: __import__("babysit.nn", fromlist=["Maxout"]).Maxout(4, 3, pieces=1), ValueError,
     "pieces must be an int >= 2"),
    ("load-spec-missing", lambda: babysit.load_spec("no/such.yaml"), babysit.SpecError, "no spec file"),
]


@pytest.mark.parametrize("case, call, error, says", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_a_malformed_library_call_raises_one_clear_line(case, call, error, says):
    with pytest.raises(error) as err:
        call()
    assert says in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_batch_larger_than_the_split_is_named_in_a_warning(tmp_path):
    with pytest.warns(BabysitWarning, match=r"train.batch_size 100000 is larger than the 1437 training examples"):
        spec = babysit.load_spec("digits-mlp", ["train.batch_size=100000", "train.steps=3", "watch.enabled=false"])
        babysit.build_trainer(spec, tmp_path, progress=False).fit()
    result = CliRunner().invoke(main, ["train", "digits-mlp", "--set", "train.batch_size=5000", "--set",
                                       "train.steps=3", "--out", str(tmp_path / "cli"), "--quiet"])
    assert result.exit_code == 0 and "warning: train.batch_size 5000 is larger" in result.output


def test_every_case_above_counts_and_there_are_at_least_a_hundred():
    assert len(CASES) + len(RUN_CASES) + len(LIBRARY_CASES) + 1 >= 100


def test_summary_json_never_holds_a_bare_nan(tmp_path):
    spec = babysit.load_spec("digits-mlp", ["optim.name=sgd", "optim.lr=1e6", "train.steps=50"])
    babysit.build_trainer(spec, tmp_path, progress=False).fit()
    text = (tmp_path / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token} in summary.json"))
    assert summary["status"] == "failed" and summary["diverged"]["train_loss"] is None  # NaN written as null
