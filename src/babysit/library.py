"""The library path: babysit in a user's own loop. `babysit.Watch` is watch/'s Watch with the
doctor's findings on what it has seen; it is defined here, above both, so that watch/ never
imports the doctor."""
from __future__ import annotations

from typing import Iterable

from babysit.doctor import RULES, RunView, diagnose
from babysit.watch.watch import Watch as _Watch


class Watch(_Watch):
    __doc__ = _Watch.__doc__

    def __init__(self, *args, live: bool = False, ignore: Iterable[str] = (), **kwargs):
        """live: after each sampled step, print each finding the first time it appears (this
        fetches the sample at once: one host sync per sampled step). ignore: finding codes never
        reported (live or by findings()), e.g. ["update-ratio-low"]."""
        self.ignore = set(RULES.check(list(ignore), "Watch(ignore=...)"))
        self.live, self._shown = live, set()
        super().__init__(*args, **kwargs)

    def step(self, loss=None) -> None:
        sampled = self._probe is not None
        super().step(loss)
        if self.live and sampled:
            for f in self.findings(finished=False):
                if (f.code, f.where) not in self._shown:
                    self._shown.add((f.code, f.where))
                    print(f"babysit step {self.steps}:{f.line()}", flush=True)

    def findings(self, **view) -> list:
        """The doctor's findings on what this Watch has seen (flushes first). Keyword arguments go
        to babysit.doctor.RunView: evals=[{step, val_loss, train_probe_loss, train_acc, val_acc}],
        num_classes, loss_kind, preflight (CheckResult dicts)."""
        view.setdefault("finished", True)
        return [f for f in diagnose(RunView.from_watch(self, **view)) if f.code not in self.ignore]
