"""babysit: train PyTorch networks the way the lectures teach, and babysit the training."""
from babysit.preflight import gradcheck, preflight
from babysit.spec import Spec, SpecError, load_spec
from babysit.train import Callback, Trainer, TrainingError
from babysit.watch.watch import Watch

__version__ = "0.1.0"
__all__ = ["Callback", "Spec", "SpecError", "Trainer", "TrainingError", "Watch", "gradcheck", "load_spec", "preflight"]
