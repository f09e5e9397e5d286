"""Hyperparameter search on Optuna, the way LECTURES.md §4 teaches: random, coarse to fine, in log
space for scales, pruned on divergence. The `search:` section's schema is the spec's
(babysit/spec/search.py); `run_search` is in driver.py."""
