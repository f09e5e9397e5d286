"""babysit: train PyTorch networks the way the lectures teach, and babysit the training."""
from babysit.doctor import Finding, RunView, diagnose
from babysit.errors import BabysitError, SpecError, TrainingError
from babysit.library import Watch
from babysit.preflight import gradcheck, preflight
from babysit.session import build_trainer
from babysit.spec import Spec, load_spec
from babysit.train import Callback, Trainer

__version__ = "0.1.0"
__all__ = ["BabysitError", "Callback", "Finding", "RunView", "Spec", "SpecError", "Trainer", "TrainingError", "Watch",
           "build_trainer", "diagnose", "gradcheck", "load_spec", "preflight"]
