"""Augmentation, test-time augmentation and preprocessing on the shipped digits, several seeds.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/augment_preprocess.py [--seeds 3]

Part 1: digits-cnn vs digits-cnn-augment (crop padding 1 + jitter, LECTURES.md §1 regularization),
both at the augmented preset's 4,000 steps, test accuracy plain and with 5-crop TTA (no mirrors:
digits are not left-right symmetric). 180 test images: one image is 0.56 points.
Part 2: digits-mlp with each preprocessing of LECTURES.md §1 (fit on train only).
Prints the tables and, last, the one-line verdict for augmentation.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from babysit import build_trainer, load_spec
from babysit.train.evaluate import evaluate
from babysit.train.tta import evaluate_tta

QUIET = ["watch.enabled=false", "train.checkpoint_every=100000"]
CNN_STEPS = 4000  # digits-cnn-augment's budget, given to both CNNs


def run(preset: str, seed: int, extra: list[str], tmp: Path) -> dict:
    spec = load_spec(preset, [f"seed={seed}", *QUIET, *extra])
    trainer = build_trainer(spec, tmp / f"{preset}-{seed}-{len(list(tmp.iterdir()))}", progress=False)
    trainer.fit()
    test = trainer.data.test
    out = {"test_acc": evaluate(trainer.model, test)["acc"]}
    if len(test.x.shape) == 4:
        out["tta_acc"] = evaluate_tta(trainer.model, test, "fivecrop", padding=1)["acc"]
    return out


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):6.2f} ± {100 * sd:4.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    seeds = range(ap.parse_args().seeds)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"digits test split (180 images), mean ± sd over {len(seeds)} seeds, accuracy %")
        print(f"{'model':<22} {'plain':>14} {'5-crop TTA':>14}")
        cnn = {}
        for preset in ("digits-cnn", "digits-cnn-augment"):
            rows = [run(preset, s, [f"train.steps={CNN_STEPS}"], tmp) for s in seeds]
            cnn[preset] = rows
            print(f"{preset:<22} {mean_sd([r['test_acc'] for r in rows]):>14} "
                  f"{mean_sd([r['tta_acc'] for r in rows]):>14}")
        print()
        print(f"{'digits-mlp preprocess':<22} {'plain':>14}")
        for kind, extra in [("none", []), ("center", []), ("standardize", []), ("pca k=32", ["data.pca_components=32"]),
                            ("pca-whiten k=32", ["data.pca_components=32"]), ("zca", []),
                            ("zca eps=0.01", ["data.whiten_eps=0.01"])]:
            name = kind.split()[0]
            rows = [run("digits-mlp", s, [f"data.preprocess={name}", *extra], tmp) for s in seeds]
            print(f"{kind:<22} {mean_sd([r['test_acc'] for r in rows]):>14}")
    base = statistics.mean(r["test_acc"] for r in cnn["digits-cnn"])
    aug = statistics.mean(r["tta_acc"] for r in cnn["digits-cnn-augment"])
    print(f"augmentation + 5-crop TTA over the plain CNN: {100 * (aug - base):+.2f} points test accuracy")


if __name__ == "__main__":
    main()
