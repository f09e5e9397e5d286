"""The rule modules; importing this package registers every rule in doctor.findings.RULES."""
from babysit.doctor.rules import activations, fit, gradients, loop, loss, preflight, structure  # noqa: F401
