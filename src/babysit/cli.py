"""`babysit ...`: the command line. Every user error (a BabysitError) is one clear message, never
a traceback; any other exception is a bug and keeps its traceback."""
from __future__ import annotations

import warnings
from pathlib import Path

import click

from babysit.cli_runs import RUN, SET, commands, echo_findings, echo_report, fmt_acc
from babysit.errors import BabysitError, BabysitWarning, Interrupted, SpecError
from babysit.layout import to_json
from babysit.cli_labs import lab
from babysit.reference import MM3_LOSS_LOG, MM3_STEPS
from babysit.spec import PRESETS_DIR, load_spec, resume_changes

DEMO_STEPS = 100_000  # about 75 s at ~1,400 steps/s on two CPU cores (measured); the reference is 200,000


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BabysitError as exc:
            raise click.ClickException(str(exc)) from None
        except Interrupted as exc:  # Ctrl-C / SIGTERM after the run wrote its checkpoint
            click.echo(str(exc), err=True)
            ctx.exit(exc.code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="babysit")
def main():
    """babysit: train PyTorch networks the way the lectures teach, and babysit the training.

    Start with `babysit demo`, or `babysit train makemore-bn` (a preset name or a YAML file).
    `babysit explain CODE` says what a finding code means and what fixes it.
    """
    warnings.showwarning = _show_warning


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """babysit's own warnings as one line on stderr; anyone else's as Python prints them."""
    if issubclass(category, BabysitWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _train(spec, out: Path | None, resume: bool, quiet: bool) -> tuple[dict, Path]:
    from babysit.runs import new_run_dir, summary_line
    from babysit.session import build_trainer
    from babysit.train import distributed

    if resume and out is None:
        raise click.UsageError("--resume needs --out RUN_DIR (the run to continue)")
    main_rank = distributed.is_main()  # under torchrun, rank 0 alone picks the folder and prints
    if out is None and not main_rank:
        raise click.UsageError("under torchrun, pass --out RUN_DIR: every rank must name the same run")
    run_dir = out or new_run_dir(spec.name)
    if main_rank:
        click.echo(f"run directory: {run_dir}")
    summary = build_trainer(spec, run_dir, resume=resume, progress=not quiet and main_rank).fit()
    if main_rank:
        click.echo(summary_line(summary))
        echo_findings(run_dir)
        echo_report(run_dir)
    if summary.get("status") == "failed":
        raise SystemExit(1)
    return summary, run_dir


def _launch(s, spec: str, overrides, out: Path | None, resume: bool, quiet: bool, nproc: int) -> None:
    """`babysit train --nproc N`: the same command on N processes under torch's launcher."""
    from babysit.runs import new_run_dir
    from babysit.train import distributed

    if resume and out is None:
        raise click.UsageError("--resume needs --out RUN_DIR (the run to continue)")
    distributed.check_spec(s, nproc, s.train.batch_size if isinstance(s.train.batch_size, int) else nproc,
                           distributed.device_for(s.train.device))  # refused once, here, not on every rank
    run_dir = out or new_run_dir(s.name)
    click.echo(f"run directory: {run_dir} ({nproc} processes)")
    args = ["train", spec, "--out", str(run_dir), *[a for o in overrides for a in ("--set", o)],
            *(["--resume"] if resume else []), *(["--quiet"] if quiet else [])]
    distributed.launch(nproc, args)


def _train_seeds(spec, out: Path | None, n: int, quiet: bool) -> dict:
    from babysit.runs import new_run_dir, summary_line
    from babysit.seeds import train_members

    parent = out or new_run_dir(spec.name)
    click.echo(f"ensemble directory: {parent} ({n} members, seeds {spec.seed}..{spec.seed + n - 1})")

    def report(k, s):
        click.echo(f"member {k} (seed {spec.seed + k}): {summary_line(s)}")

    summary = train_members(spec, parent, n, progress=not quiet, on_member=report)
    click.echo(f"ensemble of {n}: val loss {summary['val_loss']:.4f}  val acc {fmt_acc(summary['val_acc'])}  "
               f"(mean member val acc {fmt_acc(summary['mean_member_val_acc'])})")
    echo_report(parent)
    return summary


def _repair(spec, out: Path | None, resume: bool, quiet: bool, max_repairs: int) -> dict:
    from babysit.layout import REPAIRS
    from babysit.repair import train_with_repairs
    from babysit.runs import new_run_dir

    if resume:
        raise click.UsageError("--repair starts from scratch; it cannot be combined with --resume")
    run_dir = out or new_run_dir(spec.name)
    click.echo(f"run directory: {run_dir} (repairs under {run_dir}/repair-K, log in {run_dir / REPAIRS})")
    result = train_with_repairs(spec, run_dir, max_repairs=max_repairs, progress=not quiet, echo=click.echo)
    echo_report(run_dir)
    return result


@main.command()
@click.argument("spec")
@SET
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>, never overwritten).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint, exactly.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--seeds", type=click.IntRange(min=1), help="Train N independent members (seeds seed..seed+N-1) "
              "into OUT/member-K and evaluate their ensemble.")
@click.option("--repair", is_flag=True, help="Apply the doctor's fixes to the spec and train again (RUN/repairs.json).")
@click.option("--max-repairs", type=click.IntRange(min=0), default=3, show_default=True, help="With --repair: at most K restarts.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train on N processes of this machine (DDP through torch.distributed.run; gloo on CPU, "
                   "nccl on CUDA); train.batch_size stays the global batch.")
def train(spec, overrides, out, resume, quiet, seeds, repair, max_repairs, nproc):
    """Train from SPEC: a YAML file or a preset name (see `babysit presets`).

    With --resume, the run continues from RUN_DIR/checkpoint.pt with the run's own spec.yaml.

    The run directory gets spec.yaml, metrics.jsonl (readable while training), checkpoint.pt
    (written atomically every train.checkpoint_every steps) and, at the end, summary.json and
    report.html (one self-contained page; train.report: false turns it off).
    """
    from babysit.train import distributed

    if seeds and repair:
        raise click.UsageError("--seeds and --repair do not combine: repair one run, then train its "
                               "repaired spec (RUN/repairs.json) with --seeds")
    if seeds and resume:
        raise click.UsageError("--resume continues one run; resume each member with --out OUT/member-K")
    if (seeds or repair) and (nproc > 1 or distributed.launched()):
        raise click.UsageError("--seeds and --repair train on one process; drop --nproc (or torchrun)")
    if nproc > 1 and distributed.launched():
        raise click.UsageError("--nproc starts torch's launcher; under torchrun, leave it out "
                               "(torchrun's --nproc-per-node sets the processes)")
    if resume and out is not None and (out / "spec.yaml").is_file():
        # A resumed run keeps its own spec; --set may still change it (e.g. train.steps to extend it).
        # (the Trainer refuses --set changes to data/model/optim/schedule: the checkpoint holds them)
        try:
            given = load_spec(spec)
        except SpecError:
            given = None  # the original YAML may have moved; the run's own copy is all we need
        saved = load_spec(out / "spec.yaml")
        changed = resume_changes(saved, given) if given is not None else []
        if changed:
            click.echo(f"note: resuming with {out / 'spec.yaml'}; {spec} differs in: {', '.join(changed)}")
        spec = str(out / "spec.yaml")
    s = load_spec(spec, list(overrides))
    if nproc > 1 and not distributed.launched():
        return _launch(s, spec, overrides, out, resume, quiet, nproc)
    if seeds:
        return _train_seeds(s, out, seeds, quiet)
    if repair:
        return _repair(s, out, resume, quiet, max_repairs)
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

    spec = load_spec("makemore-bn", [f"train.steps={steps}", f"train.eval_every={max(steps // 5, 1)}", "name=demo"])
    click.echo(f"babysit demo: {spec.model.hidden[0]}-unit tanh MLP + BatchNorm on {spec.data.kind} "
               f"(32,033 names), {steps} steps of batch {spec.train.batch_size}")
    _, run_dir = _train(spec, out, resume=False, quiet=False)
    ref_train, ref_val = MM3_LOSS_LOG["makemore-bn"]
    click.echo(f"reference at {MM3_STEPS:,} steps (LECTURES.md §5): train {ref_train}, val {ref_val}")
    run = load_run(run_dir)
    click.echo("sampled names: " + ", ".join(sample_names(run.model, run.data.vocab, spec.data.context, n=count)))


@main.command()
@click.argument("spec")
@SET
@click.option("--json", "as_json", is_flag=True, help="A JSON list of check results.")
def check(spec, overrides, as_json):
    """Run the babysitting checklist on SPEC before training, in order: data, initial loss against
    that of diffuse predictions (ln(C) for cross-entropy, ln 2 for bce, the targets' variance for
    mse), regularization turned up raises the loss, gradient check of non-stock modules,
    overfitting a tiny subset, the learning-rate range test. Each says PASS / WARN / FAIL / SKIP,
    what it measured and expected, and on trouble what to do. Exits 1 when a check fails."""
    from babysit.preflight.checklist import run_checks
    from babysit.preflight.setup import setup_from_spec

    results = run_checks(setup_from_spec(load_spec(spec, list(overrides))))  # the model `train` starts from
    click.echo(to_json([r.as_dict() for r in results], indent=1) if as_json else str(results))
    if not results.ok:
        raise SystemExit(1)


@main.command("lr-find")
@click.argument("spec")
@SET
@click.option("--steps", type=click.IntRange(min=10), default=300, show_default=True, help="Steps of the sweep.")
@click.option("--start", default=1e-6, show_default=True, help="First learning rate.")
@click.option("--end", default=10.0, show_default=True, help="Last learning rate.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("lr_find.png"), show_default=True,
              help="Where the plot goes.")
@click.option("--race/--no-race", "do_race", default=False, show_default=True,
              help="After the sweep, train a few candidate lrs for a short share of the run each and keep "
                   "the one with the lowest val loss.")
@click.option("--write", type=click.Path(path_type=Path),
              help="Write SPEC with the suggested lr to this new YAML file.")
def lr_find(spec, overrides, steps, start, end, out, do_race, write):
    """Learning-rate range test on SPEC's model, optimizer and batch: an exponential sweep from
    --start to --end that stops when the loss passes 3x its start. Prints the range where the loss
    falls and a suggested lr (a decade below the lowest loss), and saves the plot. With --race,
    a short race among candidates in the falling range chooses the lr instead. Ends with
    `suggested lr: X`."""
    from babysit.data import build_data
    from babysit.layout import check_writable
    from babysit.lr_race import race, refuse_existing, write_spec_with_lr
    from babysit.preflight.lr_find import lr_range_test
    from babysit.report.plots import lr_find_figure, save_figure

    spec = load_spec(spec, list(overrides))
    check_writable(out)  # before the sweep, not after it
    if write is not None:
        refuse_existing(write)  # before any training
    data = build_data(spec.data)  # once: the sweep and every race candidate see the same splits
    result = lr_range_test(spec, data, start=start, end=end, steps=steps)
    click.echo(str(result))
    click.echo(f"plot: {save_figure(lr_find_figure(result), out)}")
    lr = race(spec, result, data, echo=click.echo).chosen if do_race else result.suggested
    lr = float(f"{lr:.3g}")
    if write is not None:
        write_spec_with_lr(spec, lr, write)
        click.echo(f"wrote {write} (optim.lr={lr:g})")
    click.echo(f"suggested lr: {lr:g}")


@main.command()
@click.argument("code", required=False)
def explain(code):
    """What a finding CODE means, what fires it and what fixes it (docs/findings.md); without
    CODE, every code with when it fires."""
    from babysit.pages import explain as page, finding_pages

    if code is not None:
        click.echo(page(code))
        return
    for name, text in finding_pages().items():
        fires = next((line for line in text.splitlines() if line.startswith("Fires when:")), "")
        click.echo(f"{name:26s} {fires.removeprefix('Fires when: ')}")


@main.command()
def presets():
    """List the shipped presets (use a name wherever a SPEC is asked for)."""
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        first = path.read_text().splitlines()[0].lstrip("# ")
        click.echo(f"{path.stem:22s} {first}")


@main.command()
@RUN
@click.argument("spec")
@SET
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<name>, never overwritten).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(run, spec, overrides, out, quiet):
    """Transfer learning: train SPEC starting from RUN's weights. The head (out, out_bn) is
    re-initialized for SPEC's classes and trained alone for finetune.head_steps with the body
    frozen; then everything trains, the body at optim.lr x finetune.body_lr_factor."""
    from babysit.finetune import build_finetune
    from babysit.runs import new_run_dir, summary_line

    s = load_spec(spec, list(overrides))
    run_dir = out or new_run_dir(s.name)
    click.echo(f"run directory: {run_dir} (from {run}: head alone for {s.finetune.head_steps} steps, "
               f"then body lr x {s.finetune.body_lr_factor})")
    click.echo(summary_line(build_finetune(run, s, run_dir, progress=not quiet).fit()))


@main.command()
@click.argument("spec")
@SET
@click.option("--trials", type=click.IntRange(min=1), help="Trials in all, shared among the stages in the spec's proportions.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine sharing the storage.")
@click.option("--storage", metavar="URL", envvar="OPTUNA_STORAGE", show_envvar=True,
              help="Optuna storage URL shared by every worker, e.g. postgresql://user@host:5432/db (default: "
              "sqlite:///OUT/search.db); its password is printed masked. Keep it out of the command line: "
              "the URL from OPTUNA_STORAGE, or a PostgreSQL URL without one (libpq reads PGPASSWORD or ~/.pgpass).")
@click.option("--out", type=click.Path(path_type=Path), help="Search folder (default: runs/<name>-search); "
              "the same folder resumes a killed search.")
@click.option("--sampler", type=click.Choice(["random", "grid", "tpe"]), help="Override search.sampler.")
@click.option("--join", is_flag=True, help="Only run trials of a search that another `babysit search` "
              "drives (same spec and --storage), e.g. from another machine.")
def search(spec, overrides, trials, workers, storage, out, sampler, join):
    """Hyperparameter search over SPEC's `search:` section (LECTURES.md §4): random samples of wide
    ranges at a short budget, then narrower ranges around the best trials at a longer one. Trials
    whose loss passes 3x their first loss, or turns NaN, are pruned at once.

    Writes OUT/search.db (the Optuna study: rerun the same command to resume), OUT/trials/NNNN
    (one run folder per trial), OUT/best.yaml (the winner as a complete spec), OUT/results.json and
    OUT/plots/<param>.png and OUT/report.html (with the best trials' reports); prints the table of
    trials."""
    from rich.console import Console

    from babysit.search.driver import run_search
    from babysit.runs import RUNS_ROOT
    from babysit.search.report import trials_table
    from babysit.spec import load_spec

    s = load_spec(spec, list(overrides))
    out = out or RUNS_ROOT / f"{s.name}-search"
    try:  # a SearchError is a TrainingError: the CLI group reports it
        result = run_search(s, out, trials=trials, workers=workers, storage=storage, sampler=sampler,
                            join=join, echo=click.echo)
    except Interrupted as exc:  # the trial in progress is queued again with its values
        raise Interrupted(f"search interrupted; the same command resumes it: babysit search {spec} --out {out}",
                          exc.code) from None
    Console(width=160).print(trials_table(result, f"search {out}"))
    click.echo(f"training steps run: {result.compute_steps:,}")
    if result.best is not None:
        b = result.best
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b.params.items())
        click.echo(f"best: trial {b.number} (stage {b.stage + 1}) val loss {b.value:.4f} with {params}")
        if not join:
            click.echo(f"wrote {out / 'best.yaml'} (babysit train {out / 'best.yaml'}), "
                       f"{out / 'results.json'}, plots in {out / 'plots'}")
    if not join:
        echo_report(out)


for _command in commands.commands.values():  # the commands on run folders (cli_runs.py)
    main.add_command(_command)
main.add_command(lab)  # the lectures' experiments (cli_labs.py)

if __name__ == "__main__":
    main()
