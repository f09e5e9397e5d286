"""Hyperparameter search on Optuna, the way LECTURES.md §4 teaches: random, coarse to fine, in log
space for scales, pruned on divergence. Only the spec schema is imported here, because spec.py
imports it; the runner comes in on first use."""
from babysit.search.space import ParamSpec, SearchSpec, StageSpec

__all__ = ["ParamSpec", "SearchSpec", "StageSpec", "run_search"]


def __getattr__(name):
    if name == "run_search":
        from babysit.search.driver import run_search
        return run_search
    raise AttributeError(name)
