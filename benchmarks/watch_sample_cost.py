"""What one step that Watch samples costs, in plain steps, on makemore-deep: robust to a busy
machine, since each block of sampled steps is timed against a block of plain steps just before it
in the same process (benchmarks/watch_overhead.py's 1% resolution needs a quiet machine).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watch_sample_cost.py [--no-record] [--rounds 15]

Every step of the sampled blocks is sampled (every=1), with a flush every 5 samples as the Trainer
does (written to watch.jsonl unless --no-record). Prints `extra cost of a sampled step: X plain
steps (at every=200: Y%)`, Y being what the default sampling adds to a run.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from babysit import load_spec
from babysit.data import build_data
from babysit.models import build_model
from babysit.watch.watch import Watch

BLOCK = 20  # steps per timed block
FLUSH_EVERY = 5  # samples per flush: the Trainer flushes every 1,000 steps, 5 samples at every=200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-record", action="store_true", help="keep samples in memory (no watch.jsonl)")
    args = ap.parse_args()
    spec = load_spec("makemore-deep")
    data = build_data(spec.data)
    torch.manual_seed(0)
    model = build_model(spec, data)
    opt = torch.optim.SGD(model.parameters(), lr=spec.optim.lr)
    x, y = data.train.x, data.train.y
    watch = Watch(model, opt, every=1, run_dir=None if args.no_record else tempfile.mkdtemp(), early=False,
                  flush_every=1 << 62)

    def step(sampled: bool) -> None:
        ix = torch.randint(0, x.shape[0], (spec.train.batch_size,))
        loss = F.cross_entropy(model(x[ix]), y[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sampled:
            watch.step(loss)

    for _ in range(10):  # warm-up, and the first sample's one-off work (the loss graph, the order)
        step(True)
    watch.flush()
    extra = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(BLOCK):
            step(False)
        t1 = time.perf_counter()
        for i in range(BLOCK):
            step(True)
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                watch.flush()
        t2 = time.perf_counter()
        extra.append((t2 - t1) / (t1 - t0) - 1)
    cost = statistics.median(extra)
    print(f"extra cost of a sampled step: {cost:.2f} plain steps (at every=200: {100 * cost / 200:.2f}%)")


if __name__ == "__main__":
    main()
