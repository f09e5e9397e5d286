"""The doctor: rules that read a run (a Record, or a live Watch) and return Findings with stable
codes (docs/findings.md), located to the layer and explained; fixes that repair the spec."""
from babysit.doctor.diagnose import diagnose
from babysit.doctor.findings import RULES, Finding, rule
from babysit.doctor.view import RunView

__all__ = ["Finding", "RULES", "RunView", "diagnose", "rule"]
