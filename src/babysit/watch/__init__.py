"""Watching a run: per-layer statistics (Watch) and the run's store (Record)."""
from babysit.watch.record import Record
from babysit.watch.watch import Watch

__all__ = ["Record", "Watch"]
