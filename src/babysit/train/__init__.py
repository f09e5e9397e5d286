"""Training: the Trainer loop, optimizer/schedule factories, checkpoints."""
from babysit.train.callbacks import Callback
from babysit.train.trainer import Trainer, TrainingError

__all__ = ["Callback", "Trainer", "TrainingError"]
