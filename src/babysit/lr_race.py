"""`babysit lr-find SPEC --race`: after the range test, a short race chooses the lr.

The sweep shows where the loss falls, not which lr in that range trains best over a whole run
(LECTURES.md §2: "find the learning rate first", then coarse search). The race trains a few
candidate lrs, spread over the upper part of the falling range, each for a small share of the
run's budget at a constant lr, on the spec's own model, data and optimizer (same seed: the same
init and batch order for every candidate), and keeps the one with the lowest val loss; with more
than one rung, successive halving: only the best candidates train on, resumed from their
checkpoints, so a longer look costs less than training every candidate that long.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from babysit.data import Dataset, build_data
from babysit.errors import SpecError, TrainingError
from babysit.layout import atomic_write_text
from babysit.preflight.lr_find import LRFindResult
from babysit.session import build_trainer
from babysit.spec import Spec, dump_spec, spec_from_dict
from babysit.train.batches import BatchSampler

# Candidates as multiples of the sweep's loss minimum, a quarter of a decade to 1.75 decades below
# it; the rungs of successive halving as (share of the run's steps each survivor has trained by the
# rung's end, how many go on); the winner is then moved RACE_SHIFT quarter decades: a short race
# favours lrs that make fast progress, the full run the lower loss a lower lr settles at. 25% of one
# run in all. Chosen by benchmarks/lr_race_design.py, which replays every design (2 to 6 candidates,
# shares of 2.5% to 30%, halving, shifts) on the val-loss curves benchmarks/lr_find_rules.py
# recorded: on the 12 of its 21 tuned setups measured by then, within 2% of the best lr on 10 with
# a median gap of 0.28%, against 4/12 and 11.6% for three candidates at 10% without the shift; on
# the 3 setups measured after the choice (2 tuned, 1 held out) within 2% on only 1.
RACE_FACTORS = (10 ** -1.75, 10 ** -1.25, 10 ** -0.75, 10 ** -0.25)
RACE_RUNGS = ((0.025, 2), (0.10, 1))
RACE_SHIFT = -2
QUARTER_DECADE = 10 ** 0.25  # the benchmark grid's step: the unit of RACE_SHIFT


@dataclass
class Candidate:
    lr: float
    factor: float  # lr / the sweep's loss minimum
    val_loss: float = math.inf  # at the last rung it reached; inf when the run diverged
    steps: int = 0  # trained so far


@dataclass
class RaceResult:
    run_steps: int  # one full run of the spec
    candidates: list[Candidate] = field(default_factory=list)
    chosen: float = math.nan
    winner: Optional[Candidate] = None
    shift: int = 0  # quarter decades from the winner's lr to the chosen one
    wall_s: float = 0.0

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.candidates)

    @property
    def share(self) -> float:
        """The race's training steps as a share of one full run's."""
        return self.steps / self.run_steps

    def line(self, c: Candidate) -> str:
        loss = "diverged" if math.isinf(c.val_loss) else f"{c.val_loss:.4f}"
        return (f"  lr {c.lr:.3g} ({c.factor:.3g} x the sweep's minimum): val loss {loss} "
                f"after {c.steps} steps ({100 * c.steps / self.run_steps:.3g}% of the run)")

    def choice(self) -> str:
        why = (f"{abs(self.shift)} quarter decade(s) {'below' if self.shift < 0 else 'above'} lr {self.winner.lr:.3g}, "
               "the lowest val loss (a short race favours lrs that make fast progress)" if self.shift
               else "the lowest val loss")
        return (f"race chose lr {self.chosen:.3g}: {why}; the race trained {100 * self.share:.0f}% of one "
                f"run's {self.run_steps} steps ({self.wall_s:.1f} s)")

    def __str__(self) -> str:
        return "\n".join([*map(self.line, self.candidates), self.choice()])


def plan(factors: tuple[float, ...], rungs: tuple[tuple[float, int], ...], run_steps: int) -> str:
    parts = [f"{len(factors)} candidate lrs to {100 * rungs[0][0]:g}% of the run's {run_steps} steps"]
    parts += [f"the best {keep} on to {100 * share:g}%" for (_, keep), (share, _) in zip(rungs, rungs[1:])]
    return "race: " + ", ".join(parts)


def cost(n: int, rungs: tuple[tuple[float, int], ...]) -> float:
    """The race's training steps as a share of one run's: every candidate to the first rung, the
    survivors of each rung from there to the next."""
    alive, done, total = n, 0.0, 0.0
    for share, keep in rungs:
        total += alive * (share - done)
        alive, done = min(alive, keep), share
    return total


def run_steps(spec: Spec, data: Dataset) -> int:
    """The optimizer steps of one full run (train.steps, or train.epochs over the train split)."""
    t = spec.train
    if t.steps is not None:
        return t.steps
    return t.epochs * BatchSampler.batches_per_epoch(len(data.train), t.batch_for(len(data.train)))


def race_spec(spec: Spec, lr: float, steps: int) -> Spec:
    """The spec cut to `steps` at a constant `lr` (the question the sweep's suggestion answers
    too; a schedule's warmup or milestones would not fit a short race): evaluated and checkpointed
    once at its end, no checklist, no Watch; model, data, augment, optimizer and penalties kept."""
    raw = spec.model_dump(mode="json")
    raw["optim"]["lr"] = lr
    raw["schedule"] = {"name": "constant"}
    t = raw["train"]
    t.update(steps=steps, epochs=None, eval_every=steps, checkpoint_every=steps,
             log_every=min(t["log_every"], steps), preflight=False)
    raw["watch"]["enabled"] = False
    return spec_from_dict(raw, f"{spec.name} (race, lr {lr:g})")


def race(spec: Spec, sweep: LRFindResult, data: Optional[Dataset] = None,
         factors: tuple[float, ...] = RACE_FACTORS, rungs: tuple[tuple[float, int], ...] = RACE_RUNGS,
         shift: int = RACE_SHIFT, echo: Optional[Callable[[str], None]] = None) -> RaceResult:
    """Successive halving among `factors` x the sweep's loss minimum: at each rung every survivor
    trains on (resumed from its checkpoint) to the rung's share of the run's steps, and the `keep`
    with the lowest val loss go on (a diverged candidate never does). The last rung's best,
    moved `shift` quarter decades, is the choice. `echo` gets the plan, each candidate's val loss
    at each rung, and the choice."""
    echo = echo or (lambda _: None)
    data = data if data is not None else build_data(spec.data)
    total = run_steps(spec, data)
    result = RaceResult(run_steps=total, candidates=[Candidate(sweep.falling[1] * f, f) for f in factors], shift=shift)
    echo(plan(factors, rungs, total))
    t0 = time.perf_counter()
    alive = list(result.candidates)
    with tempfile.TemporaryDirectory(prefix="babysit-race-") as tmp:
        for share, keep in rungs:
            steps = max(1, round(share * total))
            for c in alive:
                summary = build_trainer(race_spec(spec, c.lr, steps), Path(tmp) / f"lr-{c.factor:.6g}",
                                        resume=c.steps > 0, progress=False, data=data, doctor=False,
                                        checks=()).fit()
                ok = summary["stopped"] is None and math.isfinite(summary["val_loss"])
                c.val_loss, c.steps = (summary["val_loss"] if ok else math.inf), steps
                echo(result.line(c))
            alive = sorted((c for c in alive if math.isfinite(c.val_loss)), key=lambda c: (c.val_loss, c.lr))[:keep]
            if not alive:
                tried = ", ".join(f"{c.lr:.3g}" for c in result.candidates)
                raise TrainingError(f"every race candidate diverged (lr {tried}); the sweep's range is off: "
                                    "check the spec with `babysit check`")
    result.wall_s = time.perf_counter() - t0
    result.winner = alive[0]
    result.chosen = result.winner.lr * QUARTER_DECADE ** shift
    echo(result.choice())
    return result


def refuse_existing(path: Path) -> None:
    if path.exists():
        raise SpecError(f"{path} exists; choose another --write path (nothing was overwritten)")


def write_spec_with_lr(spec: Spec, lr: float, path: Path) -> None:
    """SPEC, fully resolved, with optim.lr set: a new file (an existing one is never overwritten)."""
    refuse_existing(path)
    raw = spec.model_dump(mode="json")
    raw["optim"]["lr"] = lr
    atomic_write_text(path, dump_spec(spec_from_dict(raw, str(path))))
