"""Plots (and, later, the HTML report) from a run's record."""
