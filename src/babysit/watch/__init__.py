"""Watching a run: the Record (the run's store of scalars)."""
from babysit.watch.record import Record

__all__ = ["Record"]
