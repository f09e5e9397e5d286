"""One process against two: DDP training, and a search's workers sharing a PostgreSQL study.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddp_scaling.py [--steps 2000] [--batch 32 512] [--rounds 2]
        [--trials 8] [--trial-steps 400]

Training: the preset makemore-bn at --steps steps, once per batch size in --batch (the global
batch: each of two ranks takes half), on 1 process (the plain Trainer) and on 2 (torch's launcher,
DDP on gloo), in alternating rounds. Each run's loop rate is timed on rank 0 from its first log
flush to its last (no start-up, no final evaluation); the command's whole wall time is printed
beside it. Then, on 2 processes, what one step's communication costs: the gloo all-reduce of a
gradient-sized tensor (DDP's) and of the loss (DistributedTrainer's).
Search: one stage of --trials trials of --trial-steps steps on a throwaway PostgreSQL server
(tests/distributed/postgres_server.py), with 1 worker (the driver trains) and 2 (two worker
processes), alternating; trials per minute of wall time, and how much of it workers spent inside
trials. Prints, last: `ddp steps/s ratio (2 procs / 1) at batch B: R` per batch and
`search trials/min ratio (2 workers / 1): R`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "distributed"))  # postgres_server.py
COMM_REPEATS = 300  # all-reduces timed per tensor (each a few hundred microseconds on gloo)


def _overrides(steps: int, batch: int) -> list[str]:
    return [f"train.steps={steps}", f"schedule.milestones=[{steps // 2}]", f"train.batch_size={batch}",
            f"train.log_every={max(steps // 20, 1)}", f"train.eval_every={steps}",
            f"train.checkpoint_every={steps}"]


def worker(args) -> None:
    """One run (under torchrun: one rank of it); rank 0 writes its loop rate to --result."""
    import torch
    import torch.distributed as dist

    from babysit import Callback, build_trainer, load_spec

    class LoopTimer(Callback):
        def on_log(self, trainer, step, scalars):
            now = time.perf_counter()
            if not hasattr(self, "first"):
                self.first = (step, now)
            self.last = (step, now)

    timer = LoopTimer()
    spec = load_spec("makemore-bn", _overrides(args.steps, args.batch_size))
    trainer = build_trainer(spec, Path(args.run_dir), progress=False, doctor=False, callbacks=[timer])
    trainer.fit()
    result = {}
    if dist.is_initialized():  # what one step's communication costs, at this model's size
        grads = torch.zeros(sum(p.numel() for p in trainer.model.parameters()))
        for name, tensor in (("grad_allreduce_ms", grads), ("loss_allreduce_ms", torch.zeros(()))):
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(COMM_REPEATS):
                dist.all_reduce(tensor)
            result[name] = (time.perf_counter() - t0) / COMM_REPEATS * 1e3
    if not dist.is_initialized() or dist.get_rank() == 0:
        (s0, t0), (s1, t1) = timer.first, timer.last
        result["steps_per_s"] = (s1 - s0) / (t1 - t0)
        Path(args.result).write_text(json.dumps(result))


def train_once(nproc: int, steps: int, batch: int, tmp: Path) -> dict:
    run_dir, result = tempfile.mkdtemp(dir=tmp), tmp / f"result-{time.monotonic_ns()}.json"
    me = [str(Path(__file__).resolve()), "--worker", "--run-dir", run_dir, "--result", str(result),
          "--steps", str(steps), "--batch-size", str(batch)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd = [*launcher, *me] if nproc > 1 else [sys.executable, *me]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    out = json.loads(result.read_text())
    out["wall_s"] = time.perf_counter() - t0
    return out


def search_once(pg, workers: int, trials: int, steps: int, tmp: Path, name: str) -> dict:
    import optuna

    from babysit.search.driver import run_search
    from babysit.search.study import open_storage
    from babysit.spec import load_spec

    search = {"params": {"optim.lr": {"type": "log_uniform", "low": 0.01, "high": 0.3}},
              "stages": [{"trials": trials, "steps": steps}], "heartbeat_s": 5}
    spec = load_spec("makemore-bn", [*_overrides(steps, 32), "watch.enabled=false", "model.hidden=[64]",
                                     f"name={name}", f"search={json.dumps(search)}"])
    t0 = time.perf_counter()
    run_search(spec, tmp / name, workers=workers, storage=pg.url, echo=lambda m: None)
    wall = time.perf_counter() - t0
    done = optuna.load_study(study_name=name, storage=open_storage(pg.url, 5)).get_trials(deepcopy=False)
    inside = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done if t.datetime_complete)
    return {"trials_per_min": len(done) / wall * 60, "wall_s": wall, "busy": inside / (wall * workers)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 512])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--trial-steps", type=int, default=400)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ratios = {}
        for batch in args.batch:
            pairs = []
            for r in range(args.rounds):
                order = (1, 2) if r % 2 == 0 else (2, 1)  # alternate which goes first
                got = {n: train_once(n, args.steps, batch, tmp) for n in order}
                pairs.append(got)
                print(f"batch {batch} round {r + 1}: 1 proc {got[1]['steps_per_s']:.0f} steps/s "
                      f"(command {got[1]['wall_s']:.1f} s), 2 procs {got[2]['steps_per_s']:.0f} steps/s "
                      f"(command {got[2]['wall_s']:.1f} s); gloo all-reduce per step: gradients "
                      f"{got[2]['grad_allreduce_ms']:.2f} ms, loss {got[2]['loss_allreduce_ms']:.2f} ms "
                      f"(a 1-proc step takes {1e3 / got[1]['steps_per_s']:.2f} ms)", flush=True)
            ratios[batch] = statistics.median(p[2]["steps_per_s"] / p[1]["steps_per_s"] for p in pairs)

        search_ratio = None
        if not args.skip_search:
            from postgres_server import PostgresServer

            with PostgresServer() as pg:
                pairs = []
                for r in range(args.rounds):
                    order = (1, 2) if r % 2 == 0 else (2, 1)
                    got = {w: search_once(pg, w, args.trials, args.trial_steps, tmp, f"bench-r{r}-w{w}")
                           for w in order}
                    pairs.append(got)
                    print(f"search round {r + 1}: " + ", ".join(
                        f"{w} worker(s) {g['trials_per_min']:.1f} trials/min ({g['wall_s']:.1f} s, workers "
                        f"inside trials {g['busy']:.0%} of their time)" for w, g in sorted(got.items())), flush=True)
                search_ratio = statistics.median(p[2]["trials_per_min"] / p[1]["trials_per_min"] for p in pairs)

    for batch, ratio in ratios.items():
        print(f"ddp steps/s ratio (2 procs / 1) at batch {batch}: {ratio:.2f}")
    if search_ratio is not None:
        print(f"search trials/min ratio (2 workers / 1): {search_ratio:.2f}")


if __name__ == "__main__":
    main()
