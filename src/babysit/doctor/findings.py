"""Findings and the rule registry.

A Finding says what is wrong (a stable `code`, docs/findings.md), how bad (`severity`), where (a layer
or parameter name, or None), the numbers that triggered it (`evidence`), what to do (`advice`)
and, when the spec can be repaired automatically, the name of a registered fix (`fix`).
A rule is a small function registered in RULES by its code (`@rule(code, order)`); adding one
touches one module and its test. `order` is where its findings stand among findings of one
severity, and so which fix a repair round prefers on a tie: the shipped rules hold 100-699 by
subject (activations, fit, gradients, loss, checklist, structure); a rule of yours goes after them
unless told.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from babysit.registry import LAST, Registry

SEVERITIES = ("info", "warning", "error")


@dataclass
class Finding:
    code: str
    severity: str
    where: Optional[str]
    evidence: dict = field(default_factory=dict)
    advice: str = ""
    fix: Optional[str] = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding {self.code!r}: severity must be one of {', '.join(SEVERITIES)}, "
                             f"got {self.severity!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self, where_width: int = 12) -> str:
        """One printed line: severity, code, where (padded to where_width), advice."""
        return f"  {self.severity:<8}{self.code:<24}{self.where or '-':<{where_width}} {self.advice}"

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        return cls(**{k: d.get(k) for k in ("code", "severity", "where", "evidence", "advice", "fix")})


Rule = Callable[["RunView"], list[Finding]]  # noqa: F821 (RunView lives in doctor.view)
RULES: Registry[Rule] = Registry("finding rule")


def most_severe_first(found: list) -> list:
    """Errors, then warnings, then info; stable, so each keeps its registry order."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(found, key=lambda f: rank[f.severity])


def rule(code: str, order: float = LAST) -> Callable[[Rule], Rule]:
    """Register `fn` as the rule that produces findings with this code."""
    def register(fn: Rule) -> Rule:
        fn.code = code
        return RULES.register(code, fn, order=order)
    return register


def rnd(x: Optional[float], digits: int = 4) -> Optional[float]:
    """Evidence numbers rounded for reading (4 significant digits)."""
    if x is None:
        return None
    return float(f"{x:.{digits}g}")
