"""Training: the Trainer loop, optimizer/schedule factories, checkpoints, evaluation, callbacks."""
from babysit.errors import TrainingError
from babysit.train.callbacks import Callback
from babysit.train.trainer import Start, Trainer

__all__ = ["Callback", "Start", "Trainer", "TrainingError"]
