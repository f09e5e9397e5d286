"""The babysitting checklist in its order (LECTURES.md §2): the library entry point, and the
callback that runs it once at a run's setup.

    results = babysit.preflight(model, F.cross_entropy, (x_train, y_train), optimizer=opt)
    print(results)          # one line per check: PASS / WARN / FAIL / SKIP, numbers, advice
    results.ok              # False when any check failed
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from babysit.errors import TrainingError
from babysit.layout import PREFLIGHT, write_json

# Each module registers its checks in CHECKS in checklist order: 1. data (labels, balance,
# NaN/Inf, centring, overlap), 2. initial-loss (against ln(C)), 3. regularization (turned up, the
# loss goes up), 4. gradcheck (modules torch did not write), 5. overfit-tiny (a tiny subset,
# regularization off), 6. lr-range (where the lr sits in the range test).
from babysit.preflight import lr_find, module_gradcheck, regularization  # noqa: F401  (registration)
from babysit.preflight.checks import CHECKS, Setup
from babysit.preflight.setup import SplitLike, setup_from_spec, setup_from_user
from babysit.train.callbacks import Callback

# Checks cheap enough to run before every training run (a pass over the train inputs); the
# costlier ones (overfit-tiny, regularization, ...) run when asked for (train.preflight).
DEFAULT_CHECKS = ("data",)


class Checklist(list):
    """The results in checklist order."""

    @property
    def ok(self) -> bool:
        return not any(r.status == "fail" for r in self)

    def __str__(self) -> str:
        lines = []
        for r in self:
            numbers = ", ".join(f"{k} {v}" for k, v in r.measured.items())
            lines.append(f"{r.status.upper():5s} {r.name:<14} {numbers}")
            lines.append(f"      expected: {r.expected}")
            if r.advice:
                lines.append(f"      advice: {r.advice}")
        return "\n".join(lines)


def run_checks(setup: Setup, names: Optional[list[str]] = None) -> Checklist:
    """Run the named checks (all, in checklist order, by default). They train copies only, and
    under a forked random state: running them does not change the run that follows."""
    names = CHECKS.check(names, "checks") if names is not None else list(CHECKS)
    devices = [setup.device.index or 0] if setup.device.type == "cuda" else []
    results = Checklist()
    for name in names:
        with torch.random.fork_rng(devices=devices):
            results.append(CHECKS[name](setup))
    return results


def preflight(model: nn.Module, loss_fn: Callable, train_data: SplitLike, *, val_data: Optional[SplitLike] = None,
              num_classes: Optional[int] = None, optimizer=None,
              regularizer: Optional[Callable[[nn.Module], torch.Tensor]] = None, reg_strength: float = 0.0,
              batch_size: int = 32, checks: Optional[list[str]] = None) -> Checklist:
    """The checklist for a user's own model and loop. loss_fn(logits, labels) is the data loss;
    regularizer(model) the penalty the loop adds with weight reg_strength; optimizer an instance
    or a function model -> optimizer (checks train copies; the model passed in is not changed)."""
    setup = setup_from_user(model, loss_fn, train_data, val_data=val_data, num_classes=num_classes,
                            optimizer=optimizer, regularizer=regularizer, reg_strength=reg_strength,
                            batch_size=batch_size)
    return run_checks(setup, checks)


class ChecklistCallback(Callback):
    """The checklist in a run: at setup, on the very model and data the run starts from (copies
    only); the results go to RUN/preflight.json and a `preflight` event in the record, and the
    doctor reads them from `results`."""

    def __init__(self, names: Sequence[str], stop_on_fail: bool):
        """names: the checks to run (checklist order); stop_on_fail: a failed check stops the run
        before any compute is spent on it (train.preflight), else it is only reported."""
        self.names, self.stop_on_fail = list(names), stop_on_fail
        self.results: list[dict] = []  # CheckResult.as_dict() rows, once run

    def on_setup(self, trainer) -> None:
        results = run_checks(setup_from_spec(trainer.spec, trainer.data, trainer.model), self.names)
        self.results = [r.as_dict() for r in results]
        path = trainer.run_dir / PREFLIGHT
        write_json(path, self.results, indent=1)
        failed = [r for r in results if r.status == "fail"]
        if failed and self.stop_on_fail:
            raise TrainingError("preflight failed: " + "; ".join(f"{r.name}: {r.advice}" for r in failed)
                                + f" (details in {path}; train.preflight: false skips the checks)")

    def on_train_begin(self, trainer) -> None:
        if self.results:
            trainer.record.log("preflight", 0, **{r["name"]: r["status"] for r in self.results})
