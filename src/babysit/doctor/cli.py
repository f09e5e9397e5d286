"""`babysit doctor RUN [--json]`: the findings of a finished (or running) run, re-derived from its
record, as a table for people or JSON for scripts."""
from __future__ import annotations

import json
from pathlib import Path

import click

from babysit.doctor.diagnose import diagnose
from babysit.doctor.findings import Finding
from babysit.doctor.view import RunView


def view_of_run(run: Path, notes: list[str] | None = None) -> RunView:
    """The run's record plus, when its spec is there, the model's structure (rebuilt from the spec:
    the structural rules need the modules, not the trained weights) and the number of classes.
    When the data cannot be rebuilt (its file moved), the record-only rules still run; `notes`
    gets a line saying what was skipped."""
    from babysit.data.base import DataError

    extra = {}
    if (run / "spec.yaml").is_file():
        from babysit.data import build_data
        from babysit.models import build_model
        from babysit.spec import load_spec

        spec = load_spec(run / "spec.yaml")
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
    from babysit.doctor.findings import FINDINGS

    path = Path(run) / FINDINGS
    if not path.is_file():
        return
    found = [Finding.from_dict(d) for d in json.loads(path.read_text())["findings"]]
    click.echo(f"doctor: {len(found)} finding(s)" + (f"; details: babysit doctor {run}" if found else ""))
    for f in found:
        click.echo(f.line())


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


@click.command("doctor")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="A JSON list of findings (code, severity, where, evidence, advice, fix).")
def doctor_cmd(run, as_json):
    """What is wrong with RUN, where, and what to do: the doctor's rules over the run's record
    (watch.jsonl, metrics.jsonl, preflight results). Codes are stable (see DESIGN.md)."""
    from rich.console import Console

    notes: list[str] = []
    try:
        found = diagnose(view_of_run(run, notes))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    for note in notes:
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in found], indent=1))
        return
    if not found:
        click.echo(f"{run}: no findings (every rule passed)")
        return
    Console(width=max(Console().width, 140)).print(findings_table(found, f"babysit doctor {run}"))
    counts = {s: sum(f.severity == s for f in found) for s in ("error", "warning", "info")}
    click.echo(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()))
