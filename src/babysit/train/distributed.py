"""Training on several processes with torch.distributed: DistributedDataParallel under torch's own
launcher (`torchrun`, or `babysit train --nproc N`, which runs the same launcher in-process).

What changes against one process, and nothing else:
- every rank reads the same seeded stream of global batches (train.batch_size stays the global
  batch) and keeps its own contiguous share; DDP averages the gradients, so a step is the
  one-process step (up to BatchNorm, which normalizes each share unless model.sync_batchnorm);
- the loss each step returns is the all-ranks mean (one scalar all-reduce beside DDP's
  gradient all-reduce), so the record, the Watch, the pruner and the non-finite check all see it,
  and a NaN on one rank stops every rank at the same flush;
- rank 0 alone evaluates (and broadcasts the metrics, so plateau schedules and early stopping
  decide alike everywhere), runs the callbacks (checklist, doctor, EMA, progress) and writes the
  run folder; a stop decided there (the doctor's) is shared at the next flush or evaluation;
- an exception on one rank ends its process, and the launcher then stops the others; every worker
  asks the kernel to kill it when its launcher dies (PR_SET_PDEATHSIG), so a SIGKILLed launcher
  leaves no orphan holding the cores.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from babysit.errors import SpecError, TrainingError
from babysit.layout import CHECKPOINT
from babysit.penalties import with_penalty
from babysit.spec import Spec
from babysit.train.checkpoint import load_checkpoint
from babysit.train.trainer import Trainer

# Set by `babysit train --nproc` in its workers' environment: the launcher's pid, which a worker
# checks after asking to die with its parent (it may have died before the request was made).
LAUNCHER_PID = "BABYSIT_LAUNCHER_PID"
# How long a collective may wait for a rank before the process group gives up. A rank that dies
# is noticed by the launcher within its monitor interval (0.1 s) and the others are stopped then;
# this bounds a hang nobody notices (a rank alive but stuck), e.g. across nodes.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def launched() -> bool:
    """Whether this process is a worker of torch's launcher (torchrun sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Rank 0, or a process that is not distributed at all: the one that writes and prints."""
    return rank() == 0


def _die_with_launcher() -> None:
    """Have the kernel SIGKILL this worker when its parent (the launcher) dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    expected = os.environ.get(LAUNCHER_PID)
    if expected and os.getppid() != int(expected):  # it died before we asked
        os._exit(1)


def device_for(device_name: str) -> torch.device:
    """A rank's device for train.device: cuda:LOCAL_RANK when it is auto or cuda and a GPU is
    there, else the CPU."""
    if device_name.startswith("cuda:"):
        raise SpecError(f"train.device is '{device_name}', but under several processes each rank takes "
                        f"cuda:LOCAL_RANK; set train.device to auto or cuda")
    cuda = device_name != "cpu" and torch.cuda.is_available()
    if device_name == "cuda" and not cuda:
        raise TrainingError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")


def init(device_name: str) -> torch.device:
    """Join the launcher's process group (once per process; nccl on CUDA, gloo on the CPU) and
    return this rank's device (device_for)."""
    device = device_for(device_name)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)  # "cuda" now means this rank's GPU (build_start's select_device)
    if not dist.is_initialized():
        _die_with_launcher()
        dist.init_process_group("nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return device


def check_spec(spec: Spec, world: int, batch_size: int, device: torch.device) -> None:
    """Refuse what cannot work under DDP, with what to do instead."""
    if spec.optim.name == "lbfgs":
        raise SpecError("optim.name lbfgs cannot train on several processes: its closure evaluates the "
                        "loss several times per step, and DDP averages gradients once per backward; "
                        "train it with one process (no --nproc)")
    if batch_size % world:
        raise SpecError(f"train.batch_size {batch_size} does not split evenly among {world} processes; "
                        f"use a multiple of {world} (each rank takes batch_size / {world} examples)")
    if spec.model.sync_batchnorm and device.type != "cuda":
        raise SpecError("model.sync_batchnorm needs CUDA (torch's SyncBatchNorm has no CPU kernel); on "
                        "the CPU set it to false: each rank then normalizes its own share of the batch")


class RankShare:
    """A sampler's global batches, cut to this rank's contiguous share. Every rank draws the same
    global batch (same seed, same state), so the state is the inner sampler's, shared by all."""

    def __init__(self, sampler, rank: int, world: int):
        self.inner, self.rank, self.world = sampler, rank, world

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inner.next()
        share = len(x) // self.world
        lo = self.rank * share
        return x[lo:lo + share], y[lo:lo + share]

    def __getattr__(self, name):  # per_epoch, state_dict, load_state_dict, close, ...
        return getattr(self.inner, name)


class _NoRecord:
    """The record of a rank other than 0: rank 0 writes metrics.jsonl."""

    def open(self, keep_until_step=None) -> None: ...
    def log(self, kind: str, step: int, **scalars) -> None: ...
    def close(self) -> None: ...


# gloo's error on a rank whose peer died (a collective's connection closed under it)
PEER_GONE = "Connection closed by peer"
# The launcher polls its workers every 0.1 s (torch.distributed.run's --monitor-interval) and stops
# the others when it sees one fail: 2 s lets it see the crashed rank first.
PEER_GONE_DELAY_S = 2.0


class DistributedTrainer(Trainer):
    """The Trainer on one rank of a torch.distributed job (see the module's docstring)."""

    def __init__(self, spec: Spec, run_dir: Path | str, **kwargs):
        if kwargs.get("start") is not None:
            raise TrainingError("a run started from another run's weights (a repair attempt) trains on one "
                                "process; drop --nproc (or torchrun)")
        device = init(spec.train.device)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if self.rank != 0:  # rank 0's Watch is the run's (its statistics, its file)
            spec = spec.model_copy(update={"watch": spec.watch.model_copy(update={"enabled": False})})
        super().__init__(spec, run_dir, **kwargs)
        check_spec(spec, self.world, self.batch_size, device)
        self.sampler = RankShare(self.sampler, self.rank, self.world)
        if spec.model.sync_batchnorm:  # same parameters and buffers: the optimizer keeps its references
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.ddp: Optional[DistributedDataParallel] = None
        if self.rank != 0:
            self.callbacks, self.record = [], _NoRecord()
            self._own_rng(0)
        print(f"rank {self.rank}/{self.world}: pid {os.getpid()}, device {self.device}, "
              f"backend {dist.get_backend()}, {self.batch_size // self.world} examples of each batch of "
              f"{self.batch_size}", flush=True)

    def fit(self) -> dict:
        try:
            return super().fit()
        except RuntimeError as exc:
            if PEER_GONE in str(exc):
                # another rank crashed: let its exit reach the launcher first, so the one line
                # `babysit train --nproc` prints names the rank that failed, not this one
                time.sleep(PEER_GONE_DELAY_S)
            raise

    def _own_rng(self, step: int) -> None:
        """A rank's own torch stream (dropout masks differ between shares), from (seed, rank, step):
        rank 0 keeps the one-process stream and the checkpoint's state."""
        torch.manual_seed(int(np.random.SeedSequence([self.spec.seed, self.rank, step]).generate_state(1)[0]))

    # -- the run folder: rank 0's --------------------------------------------------------------
    def _prepare_run_dir(self) -> Optional[int]:
        if self.rank == 0:
            return super()._prepare_run_dir()
        if self.resume:  # rank 0 checks the checkpoint fits the spec; a refusal there stops us all
            self.load_state_dict(load_checkpoint(self.run_dir / CHECKPOINT, map_location="cpu"))
        return None

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.rank != 0:
            self._own_rng(self.step)

    def _save_checkpoint(self) -> None:
        if self.rank == 0:
            super()._save_checkpoint()

    def _finish(self) -> dict:
        summary = (super()._finish() if self.rank == 0 else
                   {"rank": self.rank, "steps": self.step, "stopped": self.stop_reason})
        # Every rank ends together: a rank leaving while rank 0 still writes the report tears down
        # gloo's connections under it (seen in 1 of 5 test runs: the early rank aborted with
        # "terminate called without an active exception", and the launcher failed the run).
        dist.barrier()
        return summary

    # -- the loop --------------------------------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.ddp is None:
            # Wrapped at the first step, after setup callbacks and a resume have set the weights:
            # DDP's constructor broadcasts rank 0's parameters and buffers to every rank.
            ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        return with_penalty(self.loss_fn(self.ddp(x), y), self.model, self.penalty)

    def _train_step(self) -> torch.Tensor:
        loss = super()._train_step().clone()
        dist.all_reduce(loss)  # the all-ranks mean: what the record, Watch and pruner see
        return loss.div_(self.world)

    def _measure(self) -> dict:
        box = [super()._measure() if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _flush(self) -> None:
        super()._flush()
        self._agree_on_stop()

    def _evaluate(self) -> None:
        super()._evaluate()
        self._agree_on_stop()

    def _agree_on_stop(self) -> None:
        """A stop decided on one rank (rank 0's doctor, say) stops every rank at this same step."""
        reasons = [None] * self.world
        dist.all_gather_object(reasons, (self.stop_reason, self.failed))
        if self.stop_reason is None:
            self.stop_reason, self.failed = next((r for r in reasons if r[0] is not None), (None, False))

    def _catch_signals(self):
        """No handler of our own: a rank that checkpointed on a signal would wait on a collective
        the others never join. Ctrl-C or SIGTERM reach the launcher, which stops every worker; the
        run resumes from its last periodic checkpoint."""
        return lambda: None


def launch(nproc: int, cli_args: list[str]) -> None:
    """Run `python -m babysit.cli CLI_ARGS` on `nproc` processes of this machine through torch's
    launcher (torch.distributed.run, what `torchrun --standalone` runs), in this process: killing
    this process kills the launcher, and the workers die with it (_die_with_launcher)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ[LAUNCHER_PID] = str(os.getpid())  # the workers inherit the environment
    args = get_args_parser().parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "babysit.cli",
                                         *cli_args])
    try:
        run(args)
    except ChildFailedError as exc:
        # the root cause: an error's exit (code > 0) before a signal's (< 0), the earliest first
        ranks, first = min(exc.failures.items(), key=lambda kv: (kv[1].exitcode < 0, kv[1].timestamp))
        raise TrainingError(f"rank {ranks} of {nproc} failed (exit code {first.exitcode}; its error is printed "
                            "above) and the launcher stopped the others") from None
