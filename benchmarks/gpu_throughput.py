"""Steps per second on a CUDA GPU: a bare eager loop, babysit eager, babysit with the step captured
as a CUDA graph (train.compile: graph), and the graph without Watch (what Watch's eager sampled
steps cost there), on makemore-bn and makemore-deep at batch 32 and 4096 and on digits-cnn.

    python benchmarks/gpu_throughput.py [--rounds 3] [--seconds 2]

The bare loop is what one writes by hand: a batch drawn by index on the device, forward,
cross-entropy, zero_grad, backward, the spec's optimizer's step, no .item() per step. babysit runs
as users run it (Watch at its default sampling, record, schedule, doctor) without the progress
bar; its rate is timed from the start of the loop to its last step, as in trainer_overhead.py.
Rounds alternate the loops; each babysit rate is divided by the bare rate of its round and the
median of those ratios is printed. Steps per loop are sized from a short probe so that each loop
runs about --seconds.
Prints, last: `gpu: babysit eager/bare R1, babysit graph/bare R2 (makemore-bn, batch 32)`
(issue 16's bars: R1 >= 0.98, R2 >= 10). Without CUDA it says so in one line and exits 2.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from babysit import Callback, build_trainer, load_spec
from babysit.data import build_data
from babysit.models import build_model
from babysit.train.optim import build_optimizer

CASES = [("makemore-bn", 32), ("makemore-bn", 4096), ("makemore-deep", 32), ("makemore-deep", 4096),
         ("digits-cnn", None)]
LOOPS = ("babysit eager", "babysit graph", "graph, no Watch")


def spec_for(preset: str, batch, steps: int, *more: str):
    over = [f"train.steps={steps}", f"schedule.milestones=[{steps // 2}]", f"train.eval_every={steps}",
            f"train.checkpoint_every={steps}", "train.log_every=1000", *more]
    return load_spec(preset, over + ([f"train.batch_size={batch}"] if batch else []))


def bare_loop(spec, data, steps: int) -> float:
    torch.manual_seed(spec.seed)
    model = build_model(spec, data).to("cuda")
    x, y = data.train.x.to("cuda"), data.train.y.to("cuda")
    opt = build_optimizer(model, spec.optim)
    b = min(spec.train.batch_for(len(x)), len(x))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        ix = torch.randint(0, x.shape[0], (b,), device="cuda")
        loss = F.cross_entropy(model(x[ix]), y[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


class LoopClock(Callback):
    """From the loop's start to the last step's log flush (which fetches the loss: a sync)."""

    def on_train_begin(self, trainer) -> None:
        torch.cuda.synchronize()
        self.t0 = time.perf_counter()

    def on_log(self, trainer, step: int, scalars: dict) -> None:
        if step == trainer.total_steps:
            self.t_loop = time.perf_counter()


def babysit_loop(spec, data, out: Path) -> tuple[float, dict]:
    clock = LoopClock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checklist's and the doctor's advice: not timed here
        summary = build_trainer(spec, out, data=data, callbacks=[clock], progress=False).fit()
    return spec.train.steps / (clock.t_loop - clock.t0), summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="about how long each timed loop runs")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_throughput: torch sees no CUDA device here; run it on a machine with a GPU")
        return 2
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, batch in CASES:
            data = build_data(load_spec(preset).data)
            probe = bare_loop(spec_for(preset, batch, 100), data, 200)  # also the warm-up
            eager_steps = max(int(probe * args.seconds), 500)
            graph_steps = 10 * eager_steps  # a graph step is about 10x cheaper: similar times
            ratios = {k: [] for k in LOOPS}
            rates = {k: [] for k in ("bare", *LOOPS)}
            peak = None
            for r in range(args.rounds):
                bare = bare_loop(spec_for(preset, batch, eager_steps), data, eager_steps)
                rates["bare"].append(bare)
                for loop, steps, more in (("babysit eager", eager_steps, ["train.compile=off"]),
                                          ("babysit graph", graph_steps, ["train.compile=graph"]),
                                          ("graph, no Watch", graph_steps, ["train.compile=graph",
                                                                            "watch.enabled=false"])):
                    rate, summary = babysit_loop(spec_for(preset, batch, steps, *more), data,
                                                 Path(tmp) / f"{preset}-{batch}-{loop.replace(' ', '_')}-{r}")
                    if loop != "babysit eager" and summary["compile"] != "graph":
                        print(f"{preset}: the step was not captured ({summary['compile']})")
                    rates[loop].append(rate)
                    ratios[loop].append(rate / bare)
                    peak = summary.get("peak_gpu_memory_mb", peak)
            row = {"case": f"{preset}, batch {batch or load_spec(preset).train.batch_size}",
                   "bare": statistics.median(rates["bare"]), "peak": peak,
                   **{k: (statistics.median(rates[k]), statistics.median(ratios[k])) for k in LOOPS}}
            results.append(row)
            print(f"{row['case']:28s} bare {row['bare']:9,.0f}/s | " + " | ".join(
                f"{k} {row[k][0]:9,.0f}/s ({row[k][1]:.2f}x)" for k in LOOPS) + f" | peak {peak} MiB", flush=True)
    first = results[0]
    print(f"gpu: babysit eager/bare {first['babysit eager'][1]:.2f}, babysit graph/bare "
          f"{first['babysit graph'][1]:.2f} (makemore-bn, batch 32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
