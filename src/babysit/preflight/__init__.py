"""The babysitting checklist (LECTURES.md §2) as checks a machine runs before compute is spent."""
from babysit.preflight.gradcheck import GradcheckReport, gradcheck

__all__ = ["GradcheckReport", "gradcheck"]
