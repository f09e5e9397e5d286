"""The library path: babysit in a user's own loop. `babysit.Watch` is watch/'s Watch with the
doctor's findings on what it has seen; it is defined here, above both, so that watch/ never
imports the doctor."""
from __future__ import annotations

from babysit.doctor import RunView, diagnose
from babysit.watch.watch import Watch as _Watch


class Watch(_Watch):
    __doc__ = _Watch.__doc__

    def findings(self, **view) -> list:
        """The doctor's findings on what this Watch has seen (flushes first). Keyword arguments go
        to babysit.doctor.RunView: evals=[{step, val_loss, train_probe_loss, train_acc, val_acc}],
        num_classes, preflight (CheckResult dicts)."""
        view.setdefault("finished", True)
        return diagnose(RunView.from_watch(self, **view))
