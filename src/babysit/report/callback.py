"""The report at the end of a run: `babysit train` (through session.build_trainer) writes
RUN/report.html when a run ends, finished or stopped early, unless the spec sets train.report: false."""
from __future__ import annotations

import traceback
import warnings
from pathlib import Path
from typing import Optional

from babysit.errors import BabysitError
from babysit.train.callbacks import Callback


def writes_report(spec) -> bool:
    """Whether what trains `spec` (a run, a repair loop, a --seeds ensemble, a search) ends by
    writing its report: train.report. The one gate, so a test suite can close it in one place."""
    return bool(spec.train.report)


def write_end_report(spec, path: Path | str) -> Optional[Path]:
    """The report a repair loop, a --seeds ensemble or a search writes over its folder when it ends
    (babysit report PATH's page for that folder), unless `spec` sets train.report: false."""
    if not writes_report(spec):
        return None
    from babysit.report.group_pages import write_folder_report  # matplotlib: loaded only to draw

    return write_folder_report(path)


class ReportCallback(Callback):
    """Last in the chain: the doctor has written its findings and the other callbacks have added
    their results to the summary (the one passed here; summary.json gets them just after)."""

    def __init__(self):
        self.path = None

    def on_train_end(self, trainer, summary: dict) -> None:
        from babysit.report.run_page import write_report

        try:
            self.path = write_report(trainer.run_dir, summary=summary)
        except BabysitError as exc:  # a record it cannot read must not cost the run its ending
            warnings.warn(f"report not written: {exc}", stacklevel=2)
        except Exception:  # nor may a bug in drawing it: the run's results come first, the bug is shown
            warnings.warn(f"report not written, a bug in babysit.report (`babysit report {trainer.run_dir}` "
                          f"shows it again):\n{traceback.format_exc()}", stacklevel=2)
