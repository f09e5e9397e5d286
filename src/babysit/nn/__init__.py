"""Blocks torch lacks, and the init schemes the lectures teach."""
from babysit.nn.blocks import DropConnectLinear, Maxout, StochasticDepth
from babysit.nn.lsuv import lsuv_
from babysit.nn.preprocess import Preprocess

__all__ = ["DropConnectLinear", "Maxout", "Preprocess", "StochasticDepth", "lsuv_"]
