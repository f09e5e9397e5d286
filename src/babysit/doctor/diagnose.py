"""Running the rules: every registered rule (or the named ones) over one RunView."""
from __future__ import annotations

from typing import Iterable, Optional

import babysit.doctor.rules  # noqa: F401  (registers the rules)
from babysit.doctor.findings import RULES, Finding, most_severe_first
from babysit.doctor.view import RunView

# Rules cheap enough to run at every log flush; they are the ones whose error stops training.
STOP_RULES = ("non-finite", "loss-diverged")


def diagnose(view: RunView, codes: Optional[Iterable[str]] = None) -> list[Finding]:
    """Findings of the named rules (all by default), errors first, then in the rules' order."""
    codes = RULES.check(codes, "diagnose") if codes is not None else list(RULES)
    return most_severe_first([f for c in codes for f in RULES[c](view)])
