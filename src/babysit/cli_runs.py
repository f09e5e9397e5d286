"""`babysit` commands that read run folders: eval, sample, stats, plot, report, export, doctor, ensemble.
They hold no training of their own; cli.py registers them beside the commands that train."""
from __future__ import annotations

import json
from pathlib import Path

import click

from babysit.doctor import Finding, RunView, diagnose
from babysit.errors import DataError
from babysit.layout import FINDINGS, REPORT, SPEC, SUMMARY, to_json
from babysit.losses import build_loss

RUN = click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                   help="Override a spec field, e.g. --set optim.lr=0.01 --set train.steps=5000 (repeatable).")
commands = click.Group()  # cli.py adds each of them to `babysit`


def fmt_acc(acc) -> str:
    """An accuracy as printed; '-' where it means nothing (a regression loss)."""
    return "-" if acc is None else f"{acc:.4f}"


@commands.command("eval")
@RUN
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
    loss = build_loss(loaded.spec.loss)
    m = evaluate_tta(loaded.model, part, tta, pad, loss) if tta else evaluate(loaded.model, part, loss=loss)
    result = {"run": str(run), "split": split, "step": loaded.step, "loss": m["loss"], "acc": m["acc"],
              "examples": len(part), "tta": tta}
    if as_json:
        click.echo(to_json(result))
    else:
        how = f" tta {tta}" if tta else ""
        click.echo(f"{split}{how}: loss {m['loss']:.4f}  acc {fmt_acc(m['acc'])}  ({len(part)} examples, step {loaded.step})")


@commands.command()
@RUN
@click.option("-n", "count", type=click.IntRange(min=1), default=20, show_default=True, help="How many names.")
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


@commands.command()
@RUN
@click.option("--step", type=int, help="The sampled step at or before N (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of rows, one per layer.")
def stats(run, step, as_json):
    """Per-layer statistics of RUN at a sampled step: activation mean/std, saturation %, dead %,
    activation-gradient std, and grad:data / log10 update:data of the weight feeding each layer.

    Healthy (LECTURES.md §3): tanh std about 0.65 with a few % saturated, similar gradient std
    across layers, update:data near -3."""
    from babysit.watch.table import WatchRecord, format_table, layer_rows

    record = WatchRecord(run)
    sample = record.sample_at(step)
    rows = layer_rows(record, sample)
    if as_json:
        click.echo(to_json([{"step": sample["step"], **r} for r in rows], indent=1))
    else:
        click.echo(format_table(rows, sample["step"]))


@commands.command()
@RUN
@click.option("--step", type=int, help="Distributions at the sampled step at or before N (default: the last).")
def plot(run, step):
    """Write the diagnostic figures of RUN as PNGs under RUN/plots/: activation, activation-gradient
    and weight-gradient distributions, update:data over time, mean/std across depth, loss, accuracy."""
    from babysit.report.plots import write_plots

    for path in write_plots(run, step):
        click.echo(str(path))


@commands.group()
def export():
    """Export a run's record to other tools."""


@export.command("tensorboard")
@RUN
@click.option("--out", type=click.Path(path_type=Path), help="Log directory (default: RUN/tensorboard).")
def export_tensorboard_cmd(run, out):
    """Write RUN's scalars and histograms as TensorBoard event files (`tensorboard --logdir DIR`)."""
    from babysit.report.tensorboard import export_tensorboard

    click.echo(f"wrote {export_tensorboard(run, out)}")



def view_of_run(run: Path, notes: list[str] | None = None) -> RunView:
    """The run's record plus, when its spec is there, the model's structure (rebuilt from the spec:
    the structural rules need the modules, not the trained weights) and the number of classes.
    When the data cannot be rebuilt (its file moved), the record-only rules still run; `notes`
    gets a line saying what was skipped."""
    from babysit.data import build_data
    from babysit.models import build_model
    from babysit.spec import load_spec

    extra = {}
    if (run / SPEC).is_file():
        spec = load_spec(run / SPEC)
        try:
            data = build_data(spec.data)
        except (DataError, OSError) as exc:
            if notes is not None:
                notes.append(f"note: the run's data could not be rebuilt ({exc}); the rules on the model's "
                             "structure are skipped, the rules on the record still ran")
        else:
            extra = {"model": build_model(spec, data, init=False), "num_classes": data.num_classes}
    return RunView.from_run_dir(run, **extra)


def echo_findings(run: Path) -> None:
    """One line per finding the Trainer's doctor wrote to RUN/findings.json (after `babysit train`)."""
    path = Path(run) / FINDINGS
    if not path.is_file():
        return
    found = [Finding.from_dict(d) for d in json.loads(path.read_text())["findings"]]
    click.echo(f"doctor: {len(found)} finding(s)" + (f"; details: babysit doctor {run}" if found else ""))
    for f in found:
        click.echo(f.line(max(len(g.where or "-") for g in found)))


def echo_report(path: Path) -> None:
    """The report's path, when the command just wrote one (train.report)."""
    report = Path(path) / REPORT
    if report.is_file():
        click.echo(f"report: {report}")


@commands.command("report")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--open", "open_page", is_flag=True, help="Open the page in the web browser.")
def report_cmd(path, open_page):
    """Write PATH/report.html, one self-contained page (no URL fetched: it reads offline and can be
    attached to a bug report). PATH is a run (also a library-path Watch's run_dir), a search folder
    (`babysit search --out`) or a `babysit train --seeds` folder. A run's page: the verdict, the
    findings (and repair attempts), the checklist, the loss curves, the per-layer figures and
    table, the spec and environment."""
    from babysit.report.group_pages import write_folder_report
    from babysit.report.readers import report_kind

    kw = {}
    if report_kind(path) == "run" and not (path / FINDINGS).is_file():
        notes: list[str] = []
        try:  # no findings.json (a library-path record, a run killed before it wrote one): ask the doctor now
            kw["findings"] = [f.as_dict() for f in diagnose(view_of_run(path, notes))]
            kw["notes"] = notes + ["no findings.json: the findings above come from `babysit doctor` on the record"]
        except FileNotFoundError:
            pass  # no record at all: the report says so
    written = write_folder_report(path, **kw)
    click.echo(f"wrote {written}")
    if open_page:
        import webbrowser

        webbrowser.open(written.resolve().as_uri())


def _evidence(ev: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in ev.items())


def findings_table(findings: list[Finding], title: str):
    from rich.table import Table

    table = Table(title=title, show_lines=True)
    for col, style in (("severity", "bold"), ("code", "cyan"), ("where", ""), ("evidence", "dim"), ("advice", "")):
        table.add_column(col, style=style, overflow="fold")
    colour = {"error": "red", "warning": "yellow", "info": "blue"}
    for f in findings:
        table.add_row(f"[{colour[f.severity]}]{f.severity}[/]", f.code, f.where or "-", _evidence(f.evidence),
                      f.advice + (f"\n(fix: {f.fix})" if f.fix else ""))
    return table


@commands.command("doctor")
@RUN
@click.option("--json", "as_json", is_flag=True, help="A JSON list of findings (code, severity, where, evidence, advice, fix).")
def doctor_cmd(run, as_json):
    """What is wrong with RUN, where, and what to do: the doctor's rules over the run's record
    (watch.jsonl, metrics.jsonl, preflight results). Codes are stable: `babysit explain CODE` says what each means."""
    from rich.console import Console

    notes: list[str] = []
    try:
        found = diagnose(view_of_run(run, notes))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    for note in notes:
        click.echo(note, err=True)
    if as_json:
        click.echo(to_json([f.as_dict() for f in found], indent=1))
        return
    ended = _how_it_ended(run)
    if ended:
        click.echo(ended)
    if not found:
        click.echo(f"{run}: no findings" + (" on the record so far" if ended else " (every rule passed)"))
        return
    Console(width=max(Console().width, 140)).print(findings_table(found, f"babysit doctor {run}"))
    counts = {s: sum(f.severity == s for f in found) for s in ("error", "warning", "info")}
    click.echo(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()))


def _how_it_ended(run: Path) -> str:
    """A line when the run did not finish cleanly: its rules then speak of a record cut short."""
    summary = run / SUMMARY
    if not summary.is_file():
        return (f"{run} has no {SUMMARY}: the run is still training, or it was killed or ended in an error "
                "(see its output); the rules below read its record up to there")
    ended = json.loads(summary.read_text())
    return f"the run ended in an error: {ended.get('stopped')}" if ended.get("status") == "failed" else ""


def _snapshot_members(run, run_dir: Path) -> list:
    from babysit.train.snapshots import load_snapshot_members

    models = load_snapshot_members(run.model, run_dir)
    if not models:
        raise click.ClickException(f"{run_dir} has no snapshots; train it with train.snapshots: true "
                                   "and schedule.name: cosine_restarts")
    return models


@commands.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True)
@click.option("--weights", type=click.Choice(["last", "ema"]), default="last", show_default=True,
              help="Each run's last checkpoint, or its EMA weights (train.ema).")
@click.option("--snapshots", is_flag=True, help="Members are each run's snapshots (train.snapshots).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def ensemble(runs, split, weights, snapshots, as_json):
    """Evaluate the average of the members' softmax probabilities over RUNS (runs, or folders of
    runs such as `babysit train --seeds`' output). The runs must share their data and classes."""
    from babysit.runs import check_same_data, load_run, member_dirs
    from babysit.train.evaluate import evaluate

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
    r = evaluate(models, part, loss=build_loss(loaded[0].spec.loss))
    gain = 100 * (r["acc"] - r["mean_member_acc"]) if r["acc"] is not None else None
    if as_json:
        click.echo(to_json({"split": split, "weights": weights, "members": names, "loss": r["loss"],
                               "acc": r["acc"], "member_acc": r["member_acc"],
                               "mean_member_acc": r["mean_member_acc"], "gain_points": gain,
                               "examples": len(part)}))
        return
    for name, acc in zip(names, r["member_acc"]):
        click.echo(f"  {fmt_acc(acc)}  {name}")
    gained = f", gain {gain:+.2f} points" if gain is not None else ""
    click.echo(f"{split}: ensemble of {len(models)}: loss {r['loss']:.4f}  acc {fmt_acc(r['acc'])}  "
               f"(mean member acc {fmt_acc(r['mean_member_acc'])}{gained}, {len(part)} examples)")
