"""Ensembles on digits-mlp (LECTURES.md §1, L7: averaging independent models gains "a couple
percent"): mean single-model test accuracy over 5 seeds, their 5-member ensemble, a snapshot
ensemble at the budget of one run (cosine restarts, a snapshot per cycle), EMA vs raw weights.

    .venv/bin/python benchmarks/ensembles.py [--splits 5] [--members 5] [--out DIR]

digits' test split is 180 images (one image = 0.56 points), so the whole comparison is repeated
over --splits data splits (data.split_seed 42, 43, ...) and averaged. About 10 s per run of
3,000 steps on a busy 2-core CPU; 10 runs per split.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


from babysit import build_trainer, load_spec
from babysit.runs import load_run
from babysit.train.ensemble import evaluate_ensemble
from babysit.train.evaluate import evaluate
from babysit.seeds import member_spec, train_members
from babysit.train.snapshots import load_snapshot_members

EMA_DECAY = 0.999   # a time constant of 1,000 steps, a third of the 3,000-step run
CYCLES = 5          # snapshots per run: 3,000 steps / 600-step cycles


def snapshot_run(spec, run_dir: Path, test) -> tuple[float, float]:
    """One run at the budget of a single model: (snapshot-ensemble acc, last snapshot's acc)."""
    t = build_trainer(spec, run_dir, progress=False)
    t.fit()
    r = evaluate_ensemble(load_snapshot_members(t.model, run_dir), test)
    return r["acc"], r["member_acc"][-1]


def one_split(split_seed: int, n: int, out: Path) -> dict:
    base = ["watch.enabled=false", f"data.split_seed={split_seed}"]
    spec = load_spec("digits-mlp", [*base, f"train.ema={{decay: {EMA_DECAY}}}"])
    steps = spec.train.steps
    summary = train_members(spec, out / "members", n, progress=False)
    runs = [load_run(out / "members" / m) for m in summary["members"]]
    emas = [load_run(out / "members" / m, weights="ema") for m in summary["members"]]
    test = runs[0].data.test
    ema = evaluate_ensemble([r.model for r in emas], test)  # its member_acc: each EMA model alone
    snap_spec = load_spec("digits-mlp", [*base, "train.snapshots=true", "schedule.name=cosine_restarts",
                                         f"schedule.cycle_steps={steps // CYCLES}"])
    snaps = [snapshot_run(member_spec(snap_spec, k), out / f"snapshots-{k}", test) for k in range(n)]
    return {"split_seed": split_seed, "single": summary["mean_member_test_acc"], "ensemble": summary["test_acc"],
            "single_loss": sum(evaluate(r.model, test)["loss"] for r in runs) / n,
            "ensemble_loss": summary["test_loss"],
            "snapshot_ens": sum(s[0] for s in snaps) / n, "snapshot_last": sum(s[1] for s in snaps) / n,
            "ema": ema["mean_member_acc"], "ema_ensemble": ema["acc"], "test_n": len(test)}


def _row(label, r: dict) -> str:
    return (f"{label:>5} {100 * r['single']:7.2f} {100 * r['ensemble']:7.2f} {100 * r['snapshot_ens']:8.2f} "
            f"{100 * r['snapshot_last']:8.2f} {100 * r['ema']:6.2f} "
            f"{100 * r['ema_ensemble']:7.2f} {r['single_loss']:10.4f} {r['ensemble_loss']:10.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=5, help="data splits to average over")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-ensembles-"))
    n = args.members
    print(f"digits-mlp, 3,000 Adam steps per run; {n} seeds per split; test accuracy (%), runs in {out}")
    head = (f"{'split':>5} {'single':>7} {f'ens-{n}':>7} {'snap-ens':>8} {'cos-last':>8} {'EMA':>6} "
            f"{f'EMA-ens':>7} {'NLL single':>10} {f'NLL ens-{n}':>10}")
    print(head)
    rows = []
    for k in range(args.splits):
        r = one_split(42 + k, n, out / f"split-{42 + k}")
        rows.append(r)
        print(_row(r["split_seed"], r), flush=True)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "split_seed"}
    print(_row("mean", mean))
    print(f"single: mean of {n} independent runs; ens-{n}: their probabilities averaged; snap-ens: snapshot "
          f"ensemble ({CYCLES} cycles) of one cosine-restarts run, mean over {n} seeds; cos-last: that run's "
          f"final weights; EMA: the EMA weights (decay {EMA_DECAY}) of the runs in single, which are the raw weights")
    print(f"snapshot ensemble gain over mean single model: {100 * (mean['snapshot_ens'] - mean['single']):.2f} points")
    print(f"EMA gain over raw weights: {100 * (mean['ema'] - mean['single']):.2f} points")
    err_single, err_ens = 100 * (1 - mean["single"]), 100 * (1 - mean["ensemble"])
    print(f"{n}-member ensemble: test error {err_single:.2f}% -> {err_ens:.2f}% "
          f"({100 * (1 - err_ens / max(err_single, 1e-9)):.0f}% fewer errors), NLL "
          f"{mean['single_loss']:.4f} -> {mean['ensemble_loss']:.4f}")
    print(f"ensemble gain over mean single model: {100 * (mean['ensemble'] - mean['single']):.2f} points")


if __name__ == "__main__":
    main()
