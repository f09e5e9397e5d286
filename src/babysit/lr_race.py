"""`babysit lr-find SPEC --race`: after the range test, a short race chooses the lr.

The sweep shows where the loss falls, not which lr in that range trains best over a whole run
(LECTURES.md §2: "find the learning rate first", then coarse search). The race trains a few
candidate lrs, spread over the upper part of the falling range, each for a small share of the
run's budget at a constant lr, on the spec's own model, data and optimizer (same seed: the same
init and batch order for every candidate), and keeps the one with the lowest val loss.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from babysit.data import Dataset, build_data
from babysit.errors import SpecError
from babysit.layout import atomic_write_text
from babysit.preflight.lr_find import LRFindResult
from babysit.session import build_trainer
from babysit.spec import Spec, dump_spec, spec_from_dict
from babysit.train.batches import BatchSampler

# Candidates as multiples of the sweep's loss minimum, and each one's share of the run's steps:
# chosen on benchmarks/lr_find_rules.py's 21 setups (see benchmarks/lr_race_design.py).
RACE_FACTORS = (10 ** -1.5, 10 ** -1.0, 10 ** -0.5)
RACE_SHARE = 0.10


@dataclass
class Candidate:
    lr: float
    factor: float  # lr / the sweep's loss minimum
    val_loss: float  # inf when the run diverged
    steps: int


@dataclass
class RaceResult:
    run_steps: int  # one full run of the spec
    steps_each: int  # each candidate's training steps
    candidates: list[Candidate] = field(default_factory=list)
    chosen: float = math.nan
    wall_s: float = 0.0

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.candidates)

    @property
    def share(self) -> float:
        """The race's training steps as a share of one full run's."""
        return self.steps / self.run_steps

    def header(self, n: int) -> str:
        return (f"race: {n} candidate lrs, {self.steps_each} steps each "
                f"({100 * n * self.steps_each / self.run_steps:.0f}% of one run's {self.run_steps} steps in all)")

    @staticmethod
    def line(c: Candidate) -> str:
        loss = "diverged" if math.isinf(c.val_loss) else f"{c.val_loss:.4f}"
        return f"  lr {c.lr:.3g} ({c.factor:.3g} x the sweep's minimum): val loss {loss}"

    def choice(self) -> str:
        return f"race chose lr {self.chosen:.3g}: the lowest val loss ({self.wall_s:.1f} s)"

    def __str__(self) -> str:
        return "\n".join([self.header(len(self.candidates)), *map(self.line, self.candidates), self.choice()])


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
         factors: tuple[float, ...] = RACE_FACTORS, share: float = RACE_SHARE,
         echo: Optional[Callable[[str], None]] = None) -> RaceResult:
    """Train each candidate (factor x the sweep's loss minimum) for `share` of the run's steps;
    the lowest final val loss wins (a diverged candidate never does). `echo` gets the plan, each
    candidate as it finishes, and the choice."""
    echo = echo or (lambda _: None)
    data = data if data is not None else build_data(spec.data)
    total = run_steps(spec, data)
    result = RaceResult(run_steps=total, steps_each=max(1, round(share * total)))
    echo(result.header(len(factors)))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="babysit-race-") as tmp:
        for k, factor in enumerate(factors):
            lr = sweep.falling[1] * factor
            summary = build_trainer(race_spec(spec, lr, result.steps_each), Path(tmp) / f"candidate-{k}",
                                    progress=False, data=data, doctor=False, checks=()).fit()
            val = summary["val_loss"]
            ok = summary["stopped"] is None and math.isfinite(val)
            result.candidates.append(Candidate(lr, factor, val if ok else math.inf, result.steps_each))
            echo(result.line(result.candidates[-1]))
    result.wall_s = time.perf_counter() - t0
    result.chosen = min(result.candidates, key=lambda c: (c.val_loss, c.lr)).lr
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
