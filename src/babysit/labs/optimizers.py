"""`babysit lab optimizers`: L7's optimizers (LECTURES.md §1 optimizers row) racing, first on
two 2-D surfaces, then on names. Every optimizer is built the way a spec builds it (OptimSpec
through train.optim.OPTIMIZERS), at the lectures' settings: momentum rho 0.9, RMSProp decay
0.99, Adam betas 0.9 / 0.999.

Surfaces: a long narrow valley (a quadratic with curvatures 0.1 and 10, condition number 100,
axis-aligned as in L7's picture, which is where per-parameter step sizes help most) and a saddle
(x^2 + y^4/4 - y^2/2: a saddle at the origin between minima at y = +-1, started a hair off its
ridge). Each optimizer runs at each lr of a grid; the table gives its best: the fewest steps to
come within TOLERANCE of a minimum. Names: the same optimizers at a fixed budget of steps, each
at the best lr of a small grid around its lecture default, then L-BFGS on the full batch (L7:
"if you can afford full batch updates, try L-BFGS")."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from babysit.data import build_data
from babysit.labs.base import LABS, Lab, LabResult, Table
from babysit.labs.runs import QUIET, Run, subset, train
from babysit.report.plots import plt
from babysit.spec import OptimSpec, load_spec
from babysit.train import Callback
from babysit.train.optim import OPTIMIZERS

TOLERANCE = 1e-2  # "reached the minimum": within this distance of it (the surfaces' scale is ~1-10)
DIVERGED = 1e3  # a run this far from every minimum has blown up; it stops there
TASK_PRESET = "makemore-kaiming"  # MM3's net with a gain-correct init, no BatchNorm
TASK_HIDDEN = 100  # half MM3's width: 6 optimizers x 3 lrs fit the two-minute default
TASK_BATCH = 32  # MM3's batch


@dataclass(frozen=True)
class OptimizersSize:
    surface_steps: int = 1000
    surface_lrs: tuple = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    task_steps: int = 2000  # batch 32
    task_examples: Optional[int] = 20_000  # the first N training examples of names (None: all 182,625)
    lr_factors: tuple = (1.0, 3.0, 10.0)  # the task's lr grid: each optimizer's default lr x these (x1/3 was never best)
    lbfgs_steps: int = 5  # Trainer steps of L-BFGS, each up to LBFGS_ITERATIONS iterations
    seed: int = 42


@dataclass(frozen=True)
class Contender:
    label: str
    optim: dict  # OptimSpec fields besides lr
    task_lr: float  # the lecture's default lr: the centre of its grid on names


CONTENDERS = (
    Contender("SGD", {"name": "sgd"}, 0.1),  # MM3's lr
    Contender("SGD+momentum", {"name": "sgd", "momentum": 0.9}, 0.01),  # rho 0.9; lr / (1 - rho) = SGD's 0.1
    Contender("Nesterov", {"name": "sgd", "momentum": 0.9, "nesterov": True}, 0.01),
    Contender("AdaGrad", {"name": "adagrad"}, 0.01),  # torch's default
    Contender("RMSProp", {"name": "rmsprop"}, 1e-3),  # L7 / Hinton: lr 1e-3, decay 0.99 (OptimSpec.alpha)
    Contender("Adam", {"name": "adam"}, 1e-3),  # L7: "lr 1e-3 or 5e-4" is the default
)
LBFGS = Contender("L-BFGS", {"name": "lbfgs"}, 1.0)  # lr 1: the strong-Wolfe line search sets the step
LBFGS_ITERATIONS = 20  # torch's LBFGS max_iter: iterations per step (the surfaces count to the end of the step)


@dataclass(frozen=True)
class Surface:
    key: str
    title: str
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    extent: tuple[tuple[float, float], tuple[float, float]]  # (x range, y range) of the contour plot
    saddles: tuple[tuple[float, float], ...] = ()


SURFACES = (
    Surface("valley", "long narrow valley: f = (0.1 x^2 + 10 y^2) / 2", lambda x, y: 0.5 * (0.1 * x ** 2 + 10 * y ** 2),
            (-9.0, 1.0), ((0.0, 0.0),), ((-10.0, 2.0), (-1.5, 1.5))),
    Surface("saddle", "saddle: f = x^2 + y^4/4 - y^2/2 (saddle at 0, minima at y = +-1)",
            lambda x, y: x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2, (1.5, 1e-3), ((0.0, 1.0), (0.0, -1.0)),
            ((-1.8, 1.8), (-1.6, 1.6)), saddles=((0.0, 0.0),)),
)


def race(s: Surface, c: Contender, lrs: tuple, steps: int) -> list[dict]:
    """Optimize f from s.start for `steps` iterations, once per lr (all lrs in one optimizer, a
    param group each: f is summed over the points, so each point gets its own gradient). Per lr:
    the path, the iteration from which the point stays within TOLERANCE of a minimum to the end
    (None: it never settles; a lucky pass through the minimum does not count) and the gradient
    evaluations up to it. On a surface with a saddle, also the iteration at which the point first
    gets past it: nearer a minimum than the saddle (None: never). L-BFGS runs torch's
    LBFGS_ITERATIONS iterations per step (with its line search's extra evaluations); its path has
    one point per step."""
    points = [torch.tensor(s.start, dtype=torch.float64, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr, "weight_decay": 0.0} for p, lr in zip(points, lrs)]
    opt = OPTIMIZERS[c.optim["name"]](groups, OptimSpec(**c.optim, lr=lrs[0]))
    minima = torch.tensor(s.minima, dtype=torch.float64)
    calls = steps if c is not LBFGS else -(-steps // LBFGS_ITERATIONS)
    evals, iters = [0], [0]  # after each step

    def closure():
        evals[-1] += 1
        opt.zero_grad()
        xy = torch.stack(points)
        loss = s.f(xy[:, 0], xy[:, 1]).sum()
        loss.backward()
        return loss

    path = torch.empty(calls + 1, len(lrs), 2, dtype=torch.float64)
    path[0] = torch.tensor(s.start)
    for step in range(1, calls + 1):
        evals.append(evals[-1])
        opt.step(closure)
        iters.append(opt.state[points[0]]["n_iter"] if c is LBFGS else step)
        with torch.no_grad():
            path[step] = torch.stack(points)
    dist = torch.cdist(path.reshape(-1, 2), minima).min(1).values.view(calls + 1, len(lrs))
    dist = torch.where(torch.isfinite(dist), dist, torch.inf)
    # settled at step t: within TOLERANCE from t to the end (a blown-up run is never within)
    outside = (dist >= TOLERANCE).flip(0).cumsum(0).flip(0) > 0  # some later step is outside
    past = _past_saddle(s, path, dist)
    runs = []
    for i, lr in enumerate(lrs):
        inside = (~outside[:, i]).nonzero()
        settled = int(inside[0]) if len(inside) else None
        end = settled if settled is not None else _last_finite(path[:, i])
        run = {"lr": lr, "steps": iters[settled] if settled is not None else None, "evals": evals[end],
               "path": path[:end + 1, i].tolist(), "distance": float(dist[-1, i])}
        if past is not None:
            crossed = past[:, i].nonzero()
            run["past_saddle"] = iters[int(crossed[0])] if len(crossed) else None
        runs.append(run)
    return runs


def _past_saddle(s: Surface, path: torch.Tensor, dist: torch.Tensor) -> Optional[torch.Tensor]:
    """(steps + 1, lrs): whether each point is nearer a minimum than any saddle (None: no saddle).
    A point that blew up is never past: its distance to the minima is infinite."""
    if not s.saddles:
        return None
    saddles = torch.tensor(s.saddles, dtype=torch.float64)
    to_saddle = torch.cdist(path.reshape(-1, 2), saddles).min(1).values.view_as(dist)
    return dist < to_saddle


def _last_finite(path: torch.Tensor) -> int:
    finite = (torch.isfinite(path).all(1) & (path.abs() < DIVERGED).all(1)).nonzero()
    return int(finite[-1])


def best_race(s: Surface, c: Contender, size: OptimizersSize) -> tuple[dict, list[dict]]:
    """The best lr of the grid: the fewest steps to settle at a minimum, else the closest at the end."""
    runs = race(s, c, (1.0,) if c is LBFGS else size.surface_lrs, size.surface_steps)
    return min(runs, key=lambda r: (r["steps"] is None, r["steps"] or 0, r["distance"])), runs


def _surface_figure(s: Surface, best: dict):
    (x0, x1), (y0, y1) = s.extent
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    z = s.f(torch.from_numpy(xs), torch.from_numpy(ys)).numpy()
    fig, ax = plt.subplots(figsize=(11, 6))
    ax.contour(xs, ys, z - z.min() + 1e-3, levels=np.geomspace(1e-3, z.max() - z.min() + 1e-3, 25), cmap="viridis",
               linewidths=0.7, alpha=0.6)
    for label, r in best.items():
        path = np.array(r["path"])
        steps = f"{r['steps']} steps" if r["steps"] is not None else "never settles"
        ax.plot(path[:, 0], path[:, 1], ".-", markersize=2, linewidth=1, label=f"{label} (lr {r['lr']:g}): {steps}")
    ax.plot(*s.start, "ko")
    for m in s.minima:
        ax.plot(*m, "r*", markersize=12)
    for m in s.saddles:
        ax.plot(*m, "kx", markersize=10)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{s.title}; each at its best lr", xlabel="x", ylabel="y")
    ax.legend(fontsize=8, loc="lower right")
    return fig


class FunctionEvals(Callback):
    """L-BFGS on the full batch: training examples processed (full passes x n). The loss a step
    logs is its first evaluation's, so it is plotted after that evaluation; the last point is the
    final loss after every evaluation."""

    def __init__(self):
        self.after: list[int] = []  # evaluations done by the end of each step

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        state = trainer.optimizer.state[trainer.optimizer.param_groups[0]["params"][0]]
        self.after.append(state.get("func_evals", 0))

    def examples(self, n: int) -> list[int]:
        return [(before + 1) * n for before in [0, *self.after[:-1]]] + [self.after[-1] * n if self.after else 0]


def _task_spec(size: OptimizersSize, c: Contender, lr: float, steps: int, batch=TASK_BATCH):
    optim = [f"optim.{k}={str(v).lower()}" for k, v in c.optim.items()]
    return load_spec(TASK_PRESET, [
        f"model.hidden=[{TASK_HIDDEN}]", "schedule.name=constant", "schedule.milestones=[]", f"train.steps={steps}",
        f"train.eval_every={steps}", f"train.batch_size={batch}", f"train.log_every={max(steps // 100, 1)}",
        f"seed={size.seed}", f"optim.lr={lr}", *optim, *QUIET])


def run_task(size: OptimizersSize, result: LabResult, echo) -> dict:
    """Every optimizer at every lr of its grid on names, then L-BFGS on the full batch."""
    data = subset(build_data(_task_spec(size, CONTENDERS[0], 0.1, 1).data), size.task_examples)
    grid: dict[str, dict[float, Run]] = {}
    for c in CONTENDERS:
        lrs = [c.task_lr * k for k in size.lr_factors]
        grid[c.label] = {lr: train(_task_spec(size, c, lr, size.task_steps), result.out,
                                   f"{c.label}-lr{lr:.3g}", data) for lr in lrs}
        echo(f"names, {c.label}: " + ", ".join(f"lr {lr:.3g} -> {r.train_loss:.4f}" for lr, r in grid[c.label].items()))
    evals = FunctionEvals()
    lbfgs = train(_task_spec(size, LBFGS, 1.0, size.lbfgs_steps, "full"), result.out, "L-BFGS", data, [evals])
    echo(f"names, L-BFGS (full batch of {len(data.train):,}): {lbfgs.train_loss:.4f}")
    n = len(data.train)
    return {"grid": grid, "lbfgs": lbfgs, "lbfgs_examples": evals.examples(n), "n_train": n}


def _task_figure(task: dict, best: dict[str, tuple[float, Run]]):
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5))
    for label, (lr, r) in best.items():
        steps, losses = zip(*r.curves.train)
        left.plot(steps, losses, label=f"{label} (lr {lr:.3g})")
        right.plot([s * TASK_BATCH for s in steps], losses, label=f"{label} (lr {lr:.3g})")
    lb = task["lbfgs"]
    right.plot(task["lbfgs_examples"], [v for _, v in lb.curves.train] + [lb.train_loss], "o-", color="black",
               label="L-BFGS, full batch")
    left.set(title="names, each optimizer at its best lr: train loss (mean per log window)", xlabel="step",
             ylabel="cross-entropy")
    right.set(title="against training examples processed (L-BFGS: full passes)", xlabel="examples (log)",
              xscale="log", ylabel="cross-entropy")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _surface_claims(result: LabResult, surfaces: dict, saddle_runs: dict[str, list[dict]]) -> None:
    valley = surfaces["valley"]
    steps = lambda r: r["steps"] if r["steps"] is not None else math.inf  # noqa: E731
    for label in ("SGD+momentum", "Adam"):
        result.claim(f"{label} settles at the valley's minimum in fewer steps than SGD (L7)",
                     steps(valley[label]) < steps(valley["SGD"]),
                     f"{label} {steps(valley[label])} steps vs SGD {steps(valley['SGD'])} (each at its best lr)")
    first_order = min((valley[c.label]["evals"] for c in CONTENDERS if valley[c.label]["steps"] is not None),
                      default=math.inf)
    result.claim("L-BFGS (no lr to tune) settles in the valley on fewer gradient evaluations than SGD (L7)",
                 valley["L-BFGS"]["steps"] is not None and valley["L-BFGS"]["evals"] < steps(valley["SGD"]),
                 f"L-BFGS {valley['L-BFGS']['evals']} evaluations vs SGD {steps(valley['SGD'])} (the best "
                 f"first-order: {first_order})")
    # L7: the velocity carries the point through the saddle's flat region. Compared lr by lr, at the
    # lrs where both settle at a minimum (a run that never settles is no working setting); the
    # steps to *settle* are another matter: rho 0.9 rings around the minimum (|root| = sqrt(0.9)).
    past = {label: {r["lr"]: r["past_saddle"] for r in saddle_runs[label] if r["steps"] is not None}
            for label in ("SGD", "SGD+momentum")}
    both = [lr for lr in past["SGD"] if lr in past["SGD+momentum"]]
    result.claim("momentum carries SGD past the saddle faster (L7): fewer steps until nearer a minimum than the "
                 "saddle, at every lr where both settle",
                 bool(both) and all(past["SGD+momentum"][lr] < past["SGD"][lr] for lr in both),
                 "momentum vs SGD: " + (", ".join(f"lr {lr:g} {past['SGD+momentum'][lr]} vs {past['SGD'][lr]}"
                                                  for lr in both) or "no lr where both settle"))


def run(size: OptimizersSize, result: LabResult, device, echo) -> None:
    surfaces, races = {}, {}  # per surface: each optimizer's best run; all its runs
    for s in SURFACES:
        best, everything = {}, {}
        for c in (*CONTENDERS, LBFGS):
            best[c.label], everything[c.label] = best_race(s, c, size)
        surfaces[s.key] = best
        result.save(_surface_figure(s, best), f"optimizers_{s.key}")
        result.data[s.key] = {label: [{k: v for k, v in r.items() if k != "path"} for r in runs]
                              for label, runs in everything.items()}
        past = ["past the saddle"] if s.saddles else []  # steps until nearer a minimum than the saddle
        result.tables.append(Table(
            f"{s.title}: steps until it stays within {TOLERANCE:g} of a minimum, best lr of {list(size.surface_lrs)} "
            f"(L-BFGS: lr 1, its line search sets the step; iterations counted to the end of its step of "
            f"{LBFGS_ITERATIONS}), at most {size.surface_steps} steps",
            ["optimizer", "best lr", "steps", *past, "gradient evaluations", "final distance"],
            [[label, r["lr"], r["steps"] if r["steps"] is not None else f"> {size.surface_steps}",
              *([r["past_saddle"]] if past else []), r["evals"], r["distance"]] for label, r in best.items()]))
        races[s.key] = everything
    _surface_claims(result, surfaces, races["saddle"])

    task = run_task(size, result, echo)
    best = {label: min(runs.items(), key=lambda kv: kv[1].train_loss) for label, runs in task["grid"].items()}
    result.save(_task_figure(task, best), "optimizers_names")
    n, lb = task["n_train"], task["lbfgs"]
    lbfgs_passes = task["lbfgs_examples"][-1] / n
    rows = [[label, lr, r.summary["steps"], r.summary["steps"] * TASK_BATCH / n, r.summary["wall_s"], r.train_loss,
             r.summary["val_loss"]] for label, (lr, r) in best.items()]
    rows.append(["L-BFGS (full batch)", 1.0, lb.summary["steps"], lbfgs_passes, lb.summary["wall_s"], lb.train_loss,
                 lb.summary["val_loss"]])
    result.tables.append(Table(
        f"names ({n:,} training examples, MLP of {TASK_HIDDEN} tanh units): {size.task_steps} steps of batch {TASK_BATCH}, "
        f"each optimizer at its best lr of its default x {[round(k, 3) for k in size.lr_factors]}; L-BFGS: "
        f"{size.lbfgs_steps} steps of up to {LBFGS_ITERATIONS} iterations on the full batch",
        ["optimizer", "lr", "steps", "passes over the data", "wall s", "train loss", "val loss"], rows))
    result.tables.append(Table("names: final train loss at each lr of the grid (default lr x factor)",
                               ["optimizer", *(f"x{k:.3g}" for k in size.lr_factors)],
                               [[label, *(r.train_loss for r in runs.values())] for label, runs in task["grid"].items()]))
    result.data["names"] = {label: [{"lr": lr, **r.summary} for lr, r in runs.items()]
                            for label, runs in task["grid"].items()}
    result.data["names"]["L-BFGS"] = [{"lr": 1.0, **lb.summary, "examples": task["lbfgs_examples"]}]

    (_, adam), (_, sgd) = best["Adam"], best["SGD"]
    result.claim("Adam, the default for just about any new problem (L7), ends at least as low as SGD on names",
                 adam.train_loss <= sgd.train_loss, f"train loss Adam {adam.train_loss:.4f} vs SGD "
                 f"{sgd.train_loss:.4f} after {size.task_steps} steps, each at its best lr")
    floor = min(r.train_loss for _, r in best.values())
    result.claim("L-BFGS on the full batch (L7: for full-batch, deterministic problems) ends below the minibatch methods",
                 lb.train_loss < floor, f"L-BFGS {lb.train_loss:.4f} after {lbfgs_passes:.0f} full passes vs the "
                 f"best minibatch run {floor:.4f} after {size.task_steps * TASK_BATCH / n:.1f} passes")


LABS.register("optimizers", order=2, item=Lab(
    "optimizers", "L7's optimizers: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, L-BFGS on a narrow valley, a "
    "saddle and names",
    run, default=OptimizersSize(),
    full=OptimizersSize(surface_steps=5000, surface_lrs=(1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
                        task_steps=20_000, task_examples=None, lr_factors=(1 / 3, 1.0, 3.0, 10.0), lbfgs_steps=15)))
