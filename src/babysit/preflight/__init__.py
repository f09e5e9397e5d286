"""The babysitting checklist (LECTURES.md §2) as checks a machine runs before compute is spent."""
from babysit.preflight.checklist import CHECKS, Checklist, preflight, run_checks
from babysit.preflight.checks import CheckResult, Setup
from babysit.preflight.gradcheck import GradcheckReport, gradcheck

__all__ = ["CHECKS", "CheckResult", "Checklist", "GradcheckReport", "Setup", "gradcheck", "preflight", "run_checks"]
