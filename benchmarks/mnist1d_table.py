"""MNIST-1D (Greydanus, "Scaling down deep learning", 2020): the paper's table reproduced with
babysit's presets, then beaten with the lectures' techniques, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mnist1d_table.py [--out DIR] [--seeds 3] [--members 5]

Per model: the paper's test accuracy; ours reproduced (mnist1d-logreg, -mlp, -cnn, -gru: mean,
sd and range over --seeds seeds, and the ensemble of those seeds); ours improved (mnist1d-best-mlp,
-best-cnn: a --members-seed ensemble as `babysit train --seeds N` trains it, its members' mean and
spread as the single model, and the ensemble's gain over its mean member); the doctor's warnings on
every run (how many seeds had each). Also the paper's shuffled-positions variant with the CNN
(paper 56%). Test split: the package's 1,000 sequences. The last line: `mnist1d: cnn P% (which)
(paper 94%), mlp Q% (which) (paper 68%), ensemble gain G points`, P and Q the better of the
improved single-model mean and the ensemble, G the mean of the two improved models' ensemble
gains. Measured: 899 s on a 2-core CPU shared at a load average of 10.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from babysit import load_spec
from babysit.layout import FINDINGS
from babysit.seeds import MEMBER_DIR, train_members

# The paper's table, test accuracy (%); "cnn, shuffled": its CNN on sequences whose positions are
# shuffled (one fixed permutation), which takes away what a convolution relies on.
PAPER = {"logreg": 32, "mlp": 68, "cnn": 94, "gru": 91, "cnn, shuffled": 56}
REPRODUCED = {"logreg": ("mnist1d-logreg",), "mlp": ("mnist1d-mlp",), "cnn": ("mnist1d-cnn",),
              "gru": ("mnist1d-gru",), "cnn, shuffled": ("mnist1d-cnn", "data.shuffle_seq=true")}
IMPROVED = {"mlp": "mnist1d-best-mlp", "cnn": "mnist1d-best-cnn"}


def doctor_codes(parent: Path, n: int) -> str:
    """The warnings and errors the doctor left on the n members, each with how many had it."""
    seen = Counter()
    for k in range(n):
        findings = json.loads((parent / MEMBER_DIR.format(k) / FINDINGS).read_text())["findings"]
        seen.update({f["code"] for f in findings if f["severity"] != "info"})
    return ", ".join(f"{code} {count}/{n}" for code, count in sorted(seen.items())) or "none"


def run(preset: str, out: Path, n: int, overrides: tuple = ()) -> dict:
    """n seeds of `preset` (seeds 0..n-1): test accuracies in %, the ensemble's, the doctor's codes."""
    t0 = time.time()
    summary = train_members(load_spec(preset, list(overrides)), out, n, progress=False)
    accs = [100 * a for a in summary["member_test_acc"]]
    return {"accs": accs, "mean": statistics.fmean(accs), "sd": statistics.stdev(accs) if n > 1 else 0.0,
            "ensemble": 100 * summary["test_acc"], "gain": 100 * (summary["test_acc"] - summary["mean_member_test_acc"]),
            "doctor": doctor_codes(out, n), "seconds": time.time() - t0}


def spread(r: dict) -> str:
    return f"{r['mean']:.1f} ± {r['sd']:.1f} [{min(r['accs']):.1f}-{max(r['accs']):.1f}]"


def best_of(r: dict, members: int) -> tuple[float, str]:
    """The improved model's best figure: the single-model mean or the ensemble, and which."""
    if r["ensemble"] >= r["mean"]:
        return r["ensemble"], f"ensemble of {members}"
    return r["mean"], f"single, mean of {members} seeds"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per reproduced row")
    ap.add_argument("--members", type=int, default=5, help="ensemble members per improved row")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-mnist1d-"))
    start = time.time()
    print(f"MNIST-1D test accuracy (%) on the paper's 1,000 test sequences; runs in {out}")
    print(f"reproduced: mean ± sd [min-max] over {args.seeds} seeds; improved: {args.members} seeds, "
          f"their mean and their ensemble; doctor: warnings (seeds with it)")
    rows = {}
    for model, (preset, *overrides) in REPRODUCED.items():
        r = rows[model] = run(preset, out / model.replace(", ", "-"), args.seeds, tuple(overrides))
        print(f"  {model:<16} {spread(r)}  doctor: {r['doctor']}  ({r['seconds']:.0f} s)", flush=True)
    improved = {}
    for model, preset in IMPROVED.items():
        r = improved[model] = run(preset, out / preset, args.members)
        print(f"  {preset:<16} {spread(r)}, ensemble {r['ensemble']:.1f}  doctor: {r['doctor']}  "
              f"({r['seconds']:.0f} s)", flush=True)

    print()
    head = (f"{'model':<14} {'paper':>5}  {'reproduced':<24} {f'ens-{args.seeds}':>6} {'gain':>6}  "
            f"{'improved single':<24} {f'ens-{args.members}':>6} {'gain':>6}")
    print(head)
    print("-" * len(head))
    for model, r in rows.items():
        line = f"{model:<14} {PAPER[model]:>5}  {spread(r):<24} {r['ensemble']:>6.1f} {r['gain']:>+6.2f}  "
        imp = improved.get(model)
        line += f"{spread(imp):<24} {imp['ensemble']:>6.1f} {imp['gain']:>+6.2f}" if imp else f"{'-':<24} {'-':>6} {'-':>6}"
        print(line)
    print()
    for model, r in rows.items():
        print(f"doctor on {model} (reproduced): {r['doctor']}")
    for model, r in improved.items():
        print(f"doctor on {model} (improved): {r['doctor']}")
    gain = statistics.fmean(r["gain"] for r in improved.values())
    print("ensemble gain over the mean member, improved models: "
          + ", ".join(f"{m} {r['gain']:+.2f}" for m, r in improved.items()) + f" points; mean {gain:+.2f}")
    print(f"wall time {time.time() - start:.0f} s")
    cnn, cnn_which = best_of(improved["cnn"], args.members)
    mlp, mlp_which = best_of(improved["mlp"], args.members)
    print(f"mnist1d: cnn {cnn:.1f}% ({cnn_which}) (paper {PAPER['cnn']}%), "
          f"mlp {mlp:.1f}% ({mlp_which}) (paper {PAPER['mlp']}%), ensemble gain {gain:.2f} points")


if __name__ == "__main__":
    main()
