"""Blocks torch lacks, and the init schemes the lectures teach."""
from babysit.nn.preprocess import Preprocess

__all__ = ["Preprocess"]
