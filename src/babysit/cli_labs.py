"""`babysit lab NAME [--out DIR] [--full]` and `babysit lab --list`; cli.py registers it. The labs
themselves (babysit.labs, matplotlib and all) load only when a lab runs or is listed."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("lab")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the figures and results.json (default: runs/lab-NAME, never overwritten).")
@click.option("--full", is_flag=True, help="The full size (tens of minutes); the default takes under two minutes "
              "on two CPU cores.")
@click.option("--list", "list_labs", is_flag=True, help="List the labs.")
def lab(name, out, full, list_labs):
    """Rerun one of the lectures' experiments (LECTURES.md): it prints its table, then each claim
    of the lectures it tests and whether it held on our numbers, and writes its figures (PNG) and
    results.json into --out."""
    from babysit.labs import LABS, run_lab
    from babysit.runs import new_run_dir

    if list_labs or name is None:
        if name is None and not list_labs:
            raise click.UsageError("name a lab (babysit lab --list shows them)")
        for lab_name, item in LABS.items():
            click.echo(f"{lab_name:12s} {item.about}")
        return
    LABS[name]  # an unknown name fails here, before a folder is made
    run_lab(name, out or new_run_dir(f"lab-{name}"), full=full, echo=click.echo)
