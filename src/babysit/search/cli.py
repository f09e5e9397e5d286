"""`babysit search SPEC`: coarse-to-fine random search over the spec's `search:` section."""
from __future__ import annotations

from pathlib import Path

import click



@click.command()
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec field (repeatable).")
@click.option("--trials", type=click.IntRange(min=1), help="Trials in all, shared among the stages in the spec's proportions.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine sharing the storage.")
@click.option("--storage", metavar="URL", help="Optuna storage URL, e.g. postgresql://user:pw@host/db "
              "(default: sqlite:///OUT/search.db).")
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
    OUT/plots/<param>.png; prints the table of trials."""
    from rich.console import Console

    from babysit.search.driver import run_search
    from babysit.runs import RUNS_ROOT
    from babysit.search.report import trials_table
    from babysit.spec import load_spec

    s = load_spec(spec, list(overrides))
    out = out or RUNS_ROOT / f"{s.name}-search"
    result = run_search(s, out, trials=trials, workers=workers, storage=storage, sampler=sampler,
                        join=join, echo=click.echo)  # a SearchError is a TrainingError: the CLI group reports it
    Console(width=160).print(trials_table(result, f"search {out}"))
    click.echo(f"training steps run: {result.compute_steps:,}")
    if result.best is not None:
        b = result.best
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b.params.items())
        click.echo(f"best: trial {b.number} (stage {b.stage + 1}) val loss {b.value:.4f} with {params}")
        if not join:
            click.echo(f"wrote {out / 'best.yaml'} (babysit train {out / 'best.yaml'}), "
                       f"{out / 'results.json'}, plots in {out / 'plots'}")
