"""`babysit ...`: the command line. Every user error is one clear message, never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import click

from babysit.data import DataError
from babysit.spec import PRESETS_DIR, SpecError, load_spec
from babysit.train.checkpoint import CheckpointError
from babysit.train.trainer import TrainingError

USER_ERRORS = (SpecError, DataError, CheckpointError, TrainingError, ValueError)
DEMO_STEPS = 100_000  # about 75 s at ~1,400 steps/s on two CPU cores (measured); the reference is 200,000


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="babysit")
def main():
    """babysit: train PyTorch networks the way the lectures teach, and babysit the training.

    Start with `babysit demo`, or `babysit train makemore-bn` (a preset name or a YAML file).
    """


def _print_summary(summary: dict) -> None:
    acc = f"  val acc {summary['val_acc']:.3f}" if summary.get("val_acc") is not None else ""
    click.echo(f"train loss {summary['train_loss']:.4f}  val loss {summary['val_loss']:.4f}{acc}  "
               f"({summary['steps']} steps, {summary['wall_s']:.1f} s, {summary['steps_per_s']:.0f} steps/s, "
               f"{summary['device']})")
    if summary.get("stopped"):
        click.echo(f"stopped: {summary['stopped']}")


def _train(spec, out: Path | None, resume: bool, quiet: bool) -> tuple[dict, Path]:
    from babysit.runs import new_run_dir
    from babysit.train import Trainer

    if resume and out is None:
        raise click.UsageError("--resume needs --out RUN_DIR (the run to continue)")
    run_dir = out or new_run_dir(spec.name)
    click.echo(f"run directory: {run_dir}")
    summary = Trainer(spec, run_dir, resume=resume, progress=not quiet).fit()
    _print_summary(summary)
    from babysit.doctor.cli import echo_findings
    echo_findings(run_dir)
    return summary, run_dir


@main.command()
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a spec field, e.g. --set optim.lr=0.01 --set train.steps=5000 (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>, never overwritten).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint, exactly.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--seeds", type=click.IntRange(min=1), help="Train N independent members (seeds seed..seed+N-1) "
              "into OUT/member-K and evaluate their ensemble.")
@click.option("--repair", is_flag=True, help="Apply the doctor's fixes to the spec and train again (RUN/repairs.json).")
@click.option("--max-repairs", type=click.IntRange(min=0), default=3, show_default=True, help="With --repair: at most K restarts.")
def train(spec, overrides, out, resume, quiet, seeds, repair, max_repairs):
    """Train from SPEC: a YAML file or a preset name (see `babysit presets`).

    With --resume, the run continues from RUN_DIR/checkpoint.pt with the run's own spec.yaml.

    The run directory gets spec.yaml, metrics.jsonl (readable while training), checkpoint.pt
    (written atomically every train.checkpoint_every steps) and, at the end, summary.json.
    """
    if seeds and repair:
        raise click.UsageError("--seeds and --repair do not combine: repair one run, then train its "
                               "repaired spec (RUN/repairs.json) with --seeds")
    if seeds and resume:
        raise click.UsageError("--resume continues one run; resume each member with --out OUT/member-K")
    if resume and out is not None and (out / "spec.yaml").is_file():
        # A resumed run keeps its own spec; --set may still change it (e.g. train.steps to extend it).
        # (the Trainer refuses --set changes to data/model/optim/schedule: the checkpoint holds them)
        try:
            given = load_spec(spec)
        except SpecError:
            given = None  # the original YAML may have moved; the run's own copy is all we need
        saved = load_spec(out / "spec.yaml")
        changed = [k for k in ("data", "model", "optim", "schedule")
                   if given is not None and getattr(saved, k) != getattr(given, k)]
        if changed:
            click.echo(f"note: resuming with {out / 'spec.yaml'}; {spec} differs in: {', '.join(changed)}")
        spec = str(out / "spec.yaml")
    s = load_spec(spec, list(overrides))
    if seeds:
        from babysit.cli_ensembles import train_seeds
        return train_seeds(s, out, seeds, quiet)
    if repair:
        from babysit.doctor.repair import repair_command
        return repair_command(s, out, resume, quiet, max_repairs)
    _train(s, out, resume, quiet)


@main.command()
@click.option("--steps", type=click.IntRange(min=100), default=DEMO_STEPS, show_default=True,
              help="SGD steps (the reference run takes 200,000).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: runs/demo...).")
@click.option("-n", "count", default=10, show_default=True, help="Names to sample at the end.")
def demo(steps, out, count):
    """Train the MM3 names MLP with BatchNorm (preset makemore-bn) at a short budget, then sample names.

    The learning rate drops from 0.1 to 0.01 halfway, as in the reference run.
    """
    from babysit.runs import load_run
    from babysit.sample import sample_names

    spec = load_spec("makemore-bn", [f"train.steps={steps}", f"schedule.milestones=[{steps // 2}]",
                                     f"train.eval_every={max(steps // 5, 1)}", "name=demo"])
    click.echo(f"babysit demo: {spec.model.hidden[0]}-unit tanh MLP + BatchNorm on {spec.data.kind} "
               f"(32,033 names), {steps} steps of batch {spec.train.batch_size}")
    _, run_dir = _train(spec, out, resume=False, quiet=False)
    click.echo("reference at 200,000 steps (LECTURES.md §5): train 2.0668, val 2.1048")
    run = load_run(run_dir)
    click.echo("sampled names: " + ", ".join(sample_names(run.model, run.data.vocab, spec.data.context, n=count)))


@main.command("eval")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True)
@click.option("--weights", type=click.Choice(["last", "ema"]), default="last", show_default=True,
              help="The last checkpoint, or the EMA average of the weights (train.ema).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--tta", type=click.Choice(["flip", "tencrop", "fivecrop"]),
              help="Test-time augmentation (images): average the probabilities over the image and its mirror, "
                   "10 crops (corners, centre, mirrored) or 5 (no mirrors: digits, text). Crops help only "
                   "models trained with crop augmentation.")
def eval_cmd(run, split, weights, as_json, tta):
    """Evaluate a finished (or checkpointed) RUN on a split: loss and accuracy."""
    from babysit.runs import load_run
    from babysit.train.evaluate import evaluate
    from babysit.train.tta import evaluate_tta

    loaded = load_run(run, weights=weights)
    part = loaded.data.splits()[split]
    if len(part) == 0:
        raise click.ClickException(f"the {split} split of {run} is empty")
    pad = next((a.padding for a in loaded.spec.data.augment if a.name == "crop"), None)
    if tta in ("tencrop", "fivecrop") and pad is None:
        click.echo(f"warning: --tta {tta} averages shifted crops, but {run} was not trained with crop "
                   "augmentation (data.augment); its accuracy on shifted views can be far lower", err=True)
    m = evaluate_tta(loaded.model, part, tta, pad) if tta else evaluate(loaded.model, part)
    result = {"run": str(run), "split": split, "step": loaded.step, "loss": m["loss"], "acc": m["acc"],
              "examples": len(part), "tta": tta}
    if as_json:
        click.echo(json.dumps(result))
    else:
        how = f" tta {tta}" if tta else ""
        click.echo(f"{split}{how}: loss {m['loss']:.4f}  acc {m['acc']:.4f}  ({len(part)} examples, step {loaded.step})")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-n", "count", default=20, show_default=True, help="How many names.")
@click.option("--seed", default=0, show_default=True)
def sample(run, count, seed):
    """Sample names from a RUN trained on names data."""
    from babysit.runs import load_run
    from babysit.sample import sample_names

    loaded = load_run(run)
    if loaded.data.vocab is None:
        raise click.ClickException(f"{run} was not trained on character data (data.kind: {loaded.spec.data.kind})")
    for name in sample_names(loaded.model, loaded.data.vocab, loaded.spec.data.context, n=count, seed=seed):
        click.echo(name)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--step", type=int, help="The sampled step at or before N (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of rows, one per layer.")
def stats(run, step, as_json):
    """Per-layer statistics of RUN at a sampled step: activation mean/std, saturation %, dead %,
    activation-gradient std, and grad:data / log10 update:data of the weight feeding each layer.

    Healthy (LECTURES.md §3): tanh std about 0.65 with a few % saturated, similar gradient std
    across layers, update:data near -3."""
    from babysit.watch.table import WatchRecord, format_table, layer_rows

    try:
        record = WatchRecord(run)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    sample = record.sample_at(step)
    rows = layer_rows(record, sample)
    if as_json:
        click.echo(json.dumps([{"step": sample["step"], **r} for r in rows], indent=1))
    else:
        click.echo(format_table(rows, sample["step"]))


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--step", type=int, help="Distributions at the sampled step at or before N (default: the last).")
def plot(run, step):
    """Write the diagnostic figures of RUN as PNGs under RUN/plots/: activation, activation-gradient
    and weight-gradient distributions, update:data over time, mean/std across depth, loss, accuracy."""
    from babysit.report.plots import write_plots

    for path in write_plots(run, step):
        click.echo(str(path))


@main.group()
def export():
    """Export a run's record to other tools."""


@export.command("tensorboard")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Log directory (default: RUN/tensorboard).")
def export_tensorboard_cmd(run, out):
    """Write RUN's scalars and histograms as TensorBoard event files (`tensorboard --logdir DIR`)."""
    from babysit.report.tensorboard import export_tensorboard

    click.echo(f"wrote {export_tensorboard(run, out)}")


@main.command()
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of check results.")
def check(spec, overrides, as_json):
    """Run the babysitting checklist on SPEC before training, in order: data, initial loss against
    ln(C), regularization turned up raises the loss, gradient check of non-stock modules,
    overfitting a tiny subset, the learning-rate range test. Each says PASS / WARN / FAIL / SKIP,
    what it measured and expected, and on trouble what to do. Exits 1 when a check fails."""
    from babysit.preflight.checklist import run_checks
    from babysit.preflight.setup import setup_from_spec

    results = run_checks(setup_from_spec(load_spec(spec, list(overrides))))  # the model `train` starts from
    click.echo(json.dumps([r.as_dict() for r in results], indent=1) if as_json else str(results))
    if not results.ok:
        raise SystemExit(1)


@main.command("lr-find")
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field (repeatable).")
@click.option("--steps", default=300, show_default=True, help="Steps of the sweep.")
@click.option("--start", default=1e-6, show_default=True, help="First learning rate.")
@click.option("--end", default=10.0, show_default=True, help="Last learning rate.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("lr_find.png"), show_default=True,
              help="Where the plot goes.")
def lr_find(spec, overrides, steps, start, end, out):
    """Learning-rate range test on SPEC's model, optimizer and batch: an exponential sweep from
    --start to --end that stops when the loss passes 3x its start. Prints the range where the loss
    falls and a suggested lr (a decade below the lowest loss), and saves the plot."""
    from babysit.preflight.lr_find import lr_find_figure, lr_range_test
    from babysit.report.plots import plt

    result = lr_range_test(load_spec(spec, list(overrides)), start=start, end=end, steps=steps)
    click.echo(str(result))
    fig = lr_find_figure(result)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    click.echo(f"plot: {out}")


@main.command()
def presets():
    """List the shipped presets (use a name wherever a SPEC is asked for)."""
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        first = path.read_text().splitlines()[0].lstrip("# ")
        click.echo(f"{path.stem:22s} {first}")


# Commands that live beside their subsystem, registered here so `babysit --help` lists them all.
from babysit.cli_ensembles import ensemble, finetune  # noqa: E402
from babysit.doctor.cli import doctor_cmd  # noqa: E402
from babysit.search.cli import search as search_command  # noqa: E402

for _command in (doctor_cmd, ensemble, finetune, search_command):
    main.add_command(_command)

if __name__ == "__main__":
    main()
