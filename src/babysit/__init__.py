"""babysit: train PyTorch networks the way the lectures teach, and babysit the training."""
from babysit.preflight import gradcheck, preflight
from babysit.spec import Spec, SpecError, load_spec
from babysit.train import Callback, Trainer, TrainingError
from babysit.watch.watch import Watch
from babysit.doctor import Finding, RunView, diagnose

__version__ = "0.1.0"
__all__ = ["Callback", "Finding", "RunView", "Spec", "SpecError", "Trainer", "TrainingError", "Watch", "diagnose",
           "gradcheck", "load_spec", "preflight"]
