"""The babysitting checklist (LECTURES.md §2) as checks a machine runs before compute is spent."""
from babysit.preflight.checklist import CHECKS, DEFAULT_CHECKS, Checklist, preflight, run_checks
from babysit.preflight.checks import CheckResult, Setup, check
from babysit.preflight.gradcheck import GradcheckReport, gradcheck

__all__ = ["CHECKS", "DEFAULT_CHECKS", "CheckResult", "Checklist", "GradcheckReport", "Setup", "check", "gradcheck",
           "preflight", "run_checks"]
