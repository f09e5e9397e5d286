"""The outside cases: training programs people published as broken (and healthy ones), each
re-expressed as a small plain PyTorch loop with babysit.Watch. benchmarks/outside_cases.py runs them."""
