"""Which lr should lr-find suggest? babysit's rules against fastai's, on the same sweeps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lr_find_rules.py [--jobs 2] [--only NAME ...]
        [--setups tuned|held-out|all] [--curves OUT.json]

Setups: the 21 the rules were tuned on (the six names and digits presets and the 15 healthy setups
of the doctor's suite, benchmarks/broken/healthy-*.yaml: blobs, digits and names; Adam, AdamW,
RMSprop, SGD with momentum and Nesterov; tanh, sigmoid, ReLU, ELU, SiLU, leaky ReLU; with and
without BatchNorm), and HELD_OUT ones never looked at while choosing the race's settings
(MNIST-1D, Adagrad, a GRU, GELU), reported apart.

Each setup runs one sweep (babysit.preflight.lr_find), reads every rule's suggestion off it
(babysit's decade below the minimum; fastai's minimum, steep, valley and slide), runs the race
(babysit.lr_race) and trains, at a constant lr and its own budget, on a grid from a hundredth of
the sweep's minimum to 3x it (quarter decades) plus each suggestion. A rule's gap is its lr's
final val loss against the best lr tried; a rule diverged when its lr's run ended non-finite.
Digits, blobs and MNIST-1D cells average three seeds (spec seed, +1, +2: the race's runs are
the first seed's runs cut short); names cells take one (22,655 val contexts).
The race's compute share is measured here: its training steps over one run's, and its wall time
over the median wall time of the setup's full grid runs (same process, interleaved).
`--curves` also records each grid run's val loss at CURVE_FRACTIONS of its steps
(benchmarks/lr_race_design.py replays races on them).

Prints a row per setup, per rule `R: within 2% on K/N, median gap G%, diverged D`, the race's
compute share, the held-out setups apart and, last,
`babysit: within 2% on K/21, median gap G%; best fastai rule (NAME): within 2% on K'/21, median gap G'%`.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "broken"))
sys.path.insert(0, str(HERE))

from blobs import write_blobs  # noqa: E402
from doctor_suite import build_spec  # noqa: E402
from lr_find_quality import CONSTANT, WITHIN, with_overrides  # noqa: E402

from babysit import load_spec  # noqa: E402
from babysit.data import build_data  # noqa: E402
from babysit.lr_race import RACE_FACTORS, RACE_RUNGS, RACE_SHIFT, cost, race  # noqa: E402
from babysit.preflight.lr_find import lr_range_test  # noqa: E402
from babysit.preflight.lr_rules import FASTAI_RULES  # noqa: E402
from babysit.session import build_trainer  # noqa: E402
from babysit.train import Callback  # noqa: E402
from babysit.train.evaluate import evaluate  # noqa: E402

GRID = [10 ** (k / 4) for k in range(-8, 3)]  # multiples of the sweep's minimum
CURVE_FRACTIONS = (0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3)  # --curves: where val loss is read
WARM_UP = 20  # untimed sweep steps before the timed sweep
OURS = "babysit"  # the sweep's suggestion: a decade below the smoothed loss's minimum
RACE = "race"  # babysit.lr_race's choice after the sweep
LABELS = {OURS: "babysit sweep", RACE: "babysit race"}
NAMES_BUDGET = ["train.steps=10000", "train.eval_every=1000"]
PRESETS = {"makemore-bn": NAMES_BUDGET, "makemore-kaiming": NAMES_BUDGET, "makemore-deep": NAMES_BUDGET,
           "digits-mlp": [], "digits-cnn": [], "digits-cnn-augment": []}
# Never used to choose the race's candidates or share: other data (MNIST-1D), other optimizers
# (Adagrad, SGD with momentum on MNIST-1D, RMSprop on digits), other models (a 1-D CNN, a GRU,
# logistic regression, a wider names MLP) and activations (GELU).
HELD_OUT = {
    "mnist1d-cnn": {"base": "mnist1d-cnn", "set": []},
    "mnist1d-gru": {"base": "mnist1d-gru", "set": []},
    "mnist1d-mlp-sgd": {"base": "mnist1d-mlp", "set": ["optim.name=sgd", "optim.momentum=0.9"]},
    "mnist1d-logreg-adagrad": {"base": "mnist1d-logreg", "set": ["optim.name=adagrad"]},
    "blobs-adagrad-gelu": {"base": "healthy-blobs-adam-relu",
                           "set": ["optim.name=adagrad", "model.activation=gelu", "seed=5"]},
    "names-adagrad-wide": {"base": "makemore-kaiming",
                           "set": ["optim.name=adagrad", "model.hidden=[300]", *NAMES_BUDGET]},
    "digits-mlp-rmsprop-gelu": {"base": "digits-mlp", "set": ["optim.name=rmsprop", "model.activation=gelu"]},
}


def seeds_for(name: str) -> int:
    return 1 if "names" in name or name.startswith("makemore") else 3


def tuned(blobs: str) -> dict:
    out = {name: load_spec(name, [*extra, *CONSTANT]) for name, extra in PRESETS.items()}
    for path in sorted((HERE / "broken").glob("healthy-*.yaml")):
        setup = {**yaml.safe_load(path.read_text()), "name": path.stem}
        out[path.stem] = with_overrides(build_spec(setup, {"blobs": blobs}), CONSTANT)
    return out


def held_out(blobs: str) -> dict:
    out = {}
    for name, setup in HELD_OUT.items():
        base = HERE / "broken" / f"{setup['base']}.yaml"
        spec = (build_spec({**yaml.safe_load(base.read_text()), "name": name}, {"blobs": blobs})
                if base.exists() else load_spec(setup["base"]))
        out[name] = with_overrides(spec, [*setup["set"], f"name={name}", *CONSTANT])
    return out


class ValCurve(Callback):
    """Val loss at chosen steps (the race's possible lengths), read without touching training."""

    def __init__(self, steps: set[int]):
        self.steps, self.points = steps, {}

    def on_step_end(self, trainer, step, loss) -> None:
        if step in self.steps:
            self.points[step] = evaluate(trainer.model, trainer.val_split)["loss"]


def train_cell(spec, lr: float, seeds: int, data, out: Path, curve_steps: set[int]) -> dict:
    """Final val loss of `seeds` runs at `lr` (mean; inf if any diverged), their wall times and,
    with curve_steps, each run's val loss at those steps."""
    vals, walls, curves = [], [], []
    for k in range(seeds):
        run = with_overrides(spec, [f"optim.lr={lr}", f"seed={spec.seed + k}", "watch.enabled=false"])
        curve = ValCurve(curve_steps)
        t0 = time.perf_counter()
        summary = build_trainer(run, out / f"{lr!r}-{k}", progress=False, data=data, doctor=False,
                                checks=(), callbacks=[curve] if curve_steps else ()).fit()
        walls.append(time.perf_counter() - t0 if summary["stopped"] is None else math.nan)
        vals.append(summary["val_loss"] if summary["stopped"] is None and math.isfinite(summary["val_loss"])
                    else math.inf)
        curves.append(sorted(curve.points.items()))
    return {"val": sum(vals) / len(vals), "walls": walls, "curves": curves}


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def evaluate_setup(item) -> dict:
    name, spec, with_curves = item
    data = build_data(spec.data)
    lr_range_test(spec, data, steps=WARM_UP)  # a process's first steps pay torch's start-up: not timed
    t0 = time.perf_counter()
    sweep = lr_range_test(spec, data)
    sweep_s = time.perf_counter() - t0
    low = sweep.falling[1]  # the lr at the lowest smoothed loss
    suggestions = {OURS: sweep.suggested, **{f"fastai {r}": fn(sweep) for r, fn in FASTAI_RULES.items()}}
    raced = race(spec, sweep, data)
    suggestions[RACE] = raced.chosen
    lrs: list[float] = []
    for lr in [low * f for f in GRID] + list(suggestions.values()) + [c.lr for c in raced.candidates]:
        if not any(_same(lr, x) for x in lrs):
            lrs.append(lr)
    steps = raced.run_steps
    curve_steps = {max(1, round(f * steps)) for f in CURVE_FRACTIONS} if with_curves else set()
    with tempfile.TemporaryDirectory() as tmp:
        cells = {lr: train_cell(spec, lr, seeds_for(name), data, Path(tmp), curve_steps) for lr in sorted(lrs)}
    val = {lr: c["val"] for lr, c in cells.items()}
    best = min(val, key=val.get)

    def at(lr: float) -> float:
        return val[next(x for x in val if _same(x, lr))]

    gaps = {rule: at(lr) / val[best] - 1 for rule, lr in suggestions.items()}
    run_s = statistics.median(w for c in cells.values() for w in c["walls"] if not math.isnan(w))
    out = {"name": name, "low": low, "best": best, "best_val": val[best], "suggestions": suggestions, "gaps": gaps,
           "race_steps_share": raced.share, "race_wall_share": raced.wall_s / run_s,
           "sweep_wall_share": sweep_s / run_s, "run_steps": steps, "seed": spec.seed,
           "race": [(c.lr, c.val_loss, c.steps) for c in raced.candidates]}
    if with_curves:
        out["cells"] = {repr(lr / low): {"val": c["val"], "curves": c["curves"]} for lr, c in cells.items()}
    print(row(out), flush=True)
    return out


def row(r: dict) -> str:
    cells = "  ".join(f"{r['suggestions'][k]:.2e}:{100 * g:7.2f}%" for k, g in r["gaps"].items())
    return (f"{r['name']:<30} best {r['best']:.2e} ({r['best'] / r['low']:5.3f} x min, val {r['best_val']:.4f})  "
            f"{cells}  race {100 * r['race_wall_share']:3.0f}%")


def scores(results: list[dict], rule: str) -> tuple[int, float, int]:
    """(setups within 2%, median gap, setups where the rule's lr diverged)."""
    gaps = sorted(r["gaps"][rule] for r in results)
    return (sum(g <= WITHIN for g in gaps), gaps[len(gaps) // 2],
            sum(math.isinf(r["gaps"][rule]) or math.isnan(r["gaps"][rule]) for r in results))


def summary(results: list[dict], title: str) -> None:
    print(f"\n{title} ({len(results)} setups)")
    for rule in results[0]["gaps"]:
        k, g, d = scores(results, rule)
        print(f"  {LABELS.get(rule, rule):<16}: within 2% on {k}/{len(results)}, median gap {100 * g:.2f}%, diverged {d}")


# Races replayed from the recorded curves: with a constant lr and the same seed, a race candidate's
# run is the first steps of the grid's first-seed run at that lr.
MATCH = 0.01  # a grid cell stands for a factor when their logs differ by less than this


def _factor_key(cells: dict, factor: float) -> str | None:
    key = min(cells, key=lambda k: abs(math.log(float(k) / factor)))
    return key if abs(math.log(float(key) / factor)) < MATCH else None


def _val_at(cells: dict, key: str, share: float, steps: int, late: bool) -> float:
    """The candidate's val loss after `share` of the run's steps or, with `late`, its mean over the
    evaluations in the second half of its race (CURVE_FRACTIONS from share/2 to share)."""
    points = dict((s, v) for s, v in cells[key]["curves"][0])
    fractions = [f for f in CURVE_FRACTIONS if share / 2 - 1e-9 <= f <= share + 1e-9] if late else [share]
    vs = [points.get(max(1, round(f * steps)), math.inf) for f in fractions]
    v = sum(vs) / len(vs)
    return v if math.isfinite(v) else math.inf


def replay(setup: dict, factors: tuple[float, ...], rungs: tuple[tuple[float, int], ...],
           tolerance: float = 0.0, shift: int = 0, late: bool = False) -> tuple[float, float]:
    """(lr, gap) of the lr a race chooses (nan, nan when it leaves the grid): all candidates run to rungs[0]'s share, the best `keep`
    of them go on to the next rung's share, and so on; at the last rung the lowest lr within
    `tolerance` of the best val loss wins, moved `shift` quarter decades."""
    cells, steps = setup["cells"], setup["run_steps"]
    alive = [_factor_key(cells, f) for f in factors]
    if None in alive:
        return math.nan, math.nan
    vals = {}
    for share, keep in rungs:
        vals = {k: _val_at(cells, k, share, steps, late) for k in alive}
        alive = sorted(alive, key=lambda k: (vals[k], float(k)))[:keep]
    best = min(vals.values())
    chosen = min((k for k in vals if vals[k] <= best * (1 + tolerance)), key=float)
    key = _factor_key(cells, float(chosen) * 10 ** (shift / 4))
    if key is None:
        return math.nan, math.nan
    return float(key) * setup["low"], cells[key]["val"] / min(c["val"] for c in cells.values()) - 1


def check_replay(setups: list[dict]) -> float:
    """Largest relative difference between a race the benchmark ran and its replay from the curves."""
    worst = 0.0
    for s in setups:
        for lr, val, steps in s["race"]:
            key = _factor_key(s["cells"], lr / s["low"])
            recorded = dict((st, v) for st, v in s["cells"][key]["curves"][0]).get(steps)
            if recorded is not None and math.isfinite(val):
                worst = max(worst, abs(recorded - val) / val)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1, help="setups trained at once (one core each)")
    ap.add_argument("--only", nargs="+", help="these setups only")
    ap.add_argument("--setups", choices=["tuned", "held-out", "all"], default="all")
    ap.add_argument("--curves", type=Path,
                    help="also record val-loss curves of every grid run: one JSON line per setup, as each ends")
    ap.add_argument("--summarize", type=Path, help="no training: the summary of a --curves file, its races "
                    "replayed with babysit.lr_race's current settings")
    args = ap.parse_args()
    if args.summarize:
        results = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        print(f"races replayed from {args.summarize}'s curves with babysit.lr_race's settings (a replay of the "
              f"races the benchmark ran differs from them by at most {100 * check_replay(results):.4f}%)")
        for r in results:
            r["suggestions"][RACE], r["gaps"][RACE] = replay(r, RACE_FACTORS, RACE_RUNGS, shift=RACE_SHIFT)
            r["race_ran_share"], r["race_steps_share"] = r["race_steps_share"], cost(len(RACE_FACTORS), RACE_RUNGS)
        report(results, set(PRESETS) | {p.stem for p in (HERE / "broken").glob("healthy-*.yaml")})
        return
    with tempfile.TemporaryDirectory() as tmp:
        blobs = str(write_blobs(Path(tmp) / "blobs.npz"))
        groups = {"tuned": tuned(blobs) if args.setups != "held-out" else {},
                  "held-out": held_out(blobs) if args.setups != "tuned" else {}}
        items = [(name, spec, args.curves is not None) for group in groups.values() for name, spec in group.items()
                 if not args.only or name in args.only]
        print("setup, best lr tried, then per rule (" + "; ".join([OURS, *(f"fastai {r}" for r in FASTAI_RULES), RACE])
              + "): suggested lr:gap; the race's wall time as a share of one run", flush=True)
        results = []
        with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
            for result in pool.imap(evaluate_setup, items, chunksize=1):
                results.append(result)
                if args.curves:
                    with args.curves.open("a") as f:
                        f.write(json.dumps(result) + "\n")
    report(results, set(groups["tuned"]))


class _Serial:
    """Pool's imap in this process (--jobs 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def imap(fn, items, chunksize=1):
        return map(fn, items)


def report(results: list[dict], tuned_names: set[str]) -> None:
    """Every setup's row, each rule's scores (held out and tuned-on apart), the race's compute
    share and, last, the issue's line."""
    print()
    for r in results:
        print(row(r))
    tuned_results = [r for r in results if r["name"] in tuned_names]
    held = [r for r in results if r["name"] not in tuned_names]
    for title, group in (("held out", held), ("tuned on", tuned_results)):
        if group:
            summary(group, title)
    steps = [r["race_steps_share"] for r in results]
    walls = sorted(r["race_wall_share"] for r in results)
    sweeps = sorted(r["sweep_wall_share"] for r in results)
    ran = max(r.get("race_ran_share", r["race_steps_share"]) for r in results)
    print(f"\nrace compute: {100 * max(steps):.0f}% of one run's training steps; wall time of the race as run "
          f"({100 * ran:.0f}% of the steps): median {100 * statistics.median(walls):.0f}% of one run "
          f"(max {100 * walls[-1]:.0f}%); the sweep before it: median {100 * statistics.median(sweeps):.0f}%")
    if tuned_results:
        k, g, _ = scores(tuned_results, RACE)
        fastai = min((r for r in tuned_results[0]["gaps"] if r.startswith("fastai")),
                     key=lambda r: scores(tuned_results, r)[1])
        kf, gf, _ = scores(tuned_results, fastai)
        n = len(tuned_results)
        print(f"babysit: within 2% on {k}/{n}, median gap {100 * g:.2f}%; best fastai rule "
              f"({fastai.removeprefix('fastai ')}): within 2% on {kf}/{n}, median gap {100 * gf:.2f}%")


if __name__ == "__main__":
    main()
