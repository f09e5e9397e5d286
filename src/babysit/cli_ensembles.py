"""`babysit ensemble` and `babysit finetune`, and the `--seeds` branch of `babysit train`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from babysit.spec import load_spec


def train_seeds(spec, out: Path | None, n: int, quiet: bool) -> dict:
    from babysit.runs import new_run_dir
    from babysit.train.seeds import train_members

    parent = out or new_run_dir(spec.name)
    click.echo(f"ensemble directory: {parent} ({n} members, seeds {spec.seed}..{spec.seed + n - 1})")

    def report(k, s):
        click.echo(f"member {k} (seed {spec.seed + k}): val loss {s['val_loss']:.4f}  val acc {s['val_acc']:.4f}")

    summary = train_members(spec, parent, n, progress=not quiet, on_member=report)
    click.echo(f"ensemble of {n}: val loss {summary['val_loss']:.4f}  val acc {summary['val_acc']:.4f}  "
               f"(mean member val acc {summary['mean_member_val_acc']:.4f})")
    return summary


def _snapshot_members(run, run_dir: Path) -> list:
    from babysit.train.snapshots import load_snapshot_members

    models = load_snapshot_members(run.model, run_dir)
    if not models:
        raise click.ClickException(f"{run_dir} has no snapshots; train it with train.snapshots: true "
                                   "and schedule.name: cosine_restarts")
    return models


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True)
@click.option("--weights", type=click.Choice(["last", "ema"]), default="last", show_default=True,
              help="Each run's last checkpoint, or its EMA weights (train.ema).")
@click.option("--snapshots", is_flag=True, help="Members are each run's snapshots (train.snapshots).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def ensemble(runs, split, weights, snapshots, as_json):
    """Evaluate the average of the members' softmax probabilities over RUNS (runs, or folders of
    runs such as `babysit train --seeds`' output). The runs must share their data and classes."""
    from babysit.runs import load_run
    from babysit.train.ensemble import check_same_data, evaluate_ensemble, member_dirs

    if snapshots and weights != "last":
        raise click.UsageError("--snapshots uses each run's snapshot files; --weights applies to whole runs, "
                               "so give one of them")
    dirs = member_dirs(runs)
    loaded = [load_run(d, weights=weights) for d in dirs]
    check_same_data(loaded, [str(d) for d in dirs], split)
    part = loaded[0].data.splits()[split]
    if len(part) == 0:
        raise click.ClickException(f"the {split} split of {dirs[0]} is empty")
    models, names = [], []
    for run, d in zip(loaded, dirs):
        ms = _snapshot_members(run, d) if snapshots else [run.model]
        models += ms
        names += [f"{d} snapshot {i}" for i in range(len(ms))] if snapshots else [str(d)]
    r = evaluate_ensemble(models, part)
    gain = 100 * (r["acc"] - r["mean_member_acc"])
    if as_json:
        click.echo(json.dumps({"split": split, "weights": weights, "members": names, "loss": r["loss"],
                               "acc": r["acc"], "member_acc": r["member_acc"],
                               "mean_member_acc": r["mean_member_acc"], "gain_points": gain,
                               "examples": len(part)}))
        return
    for name, acc in zip(names, r["member_acc"]):
        click.echo(f"  {acc:.4f}  {name}")
    click.echo(f"{split}: ensemble of {len(models)}: loss {r['loss']:.4f}  acc {r['acc']:.4f}  "
               f"(mean member acc {r['mean_member_acc']:.4f}, gain {gain:+.2f} points, {len(part)} examples)")


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>, never overwritten).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(run, spec, overrides, out, quiet):
    """Transfer learning: train SPEC starting from RUN's weights. The head (out, out_bn) is
    re-initialized for SPEC's classes and trained alone for finetune.head_steps with the body
    frozen; then everything trains, the body at optim.lr x finetune.body_lr_factor."""
    from babysit.cli import _print_summary
    from babysit.runs import new_run_dir
    from babysit.train.finetune import build_finetune

    s = load_spec(spec, list(overrides))
    run_dir = out or new_run_dir(s.name)
    click.echo(f"run directory: {run_dir} (from {run}: head alone for {s.finetune.head_steps} steps, "
               f"then body lr x {s.finetune.body_lr_factor})")
    _print_summary(build_finetune(run, s, run_dir, progress=not quiet).fit())
