"""`babysit export tensorboard RUN`: the run's scalars and histograms as TensorBoard event files,
for people whose habits live there. Reads the record; the run is not touched."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from babysit.errors import CheckpointError
from babysit.layout import METRICS, WATCH, check_writable
from babysit.watch.record import read_events
from babysit.watch.table import WatchRecord

LAYER_SCALARS = ("mean", "std", "saturated", "zero", "dead", "grad_std")
PARAM_SCALARS = ("grad_std", "grad_data", "update_data", "norm")


def _histogram(writer, tag: str, shares: list, lo: float, hi: float, mean: float, std: float, step: int) -> None:
    """Our histograms are shares of the values in fixed bins; TensorBoard takes them as counts."""
    if not shares or shares[0] is None or mean is None or std is None:
        return
    width = (hi - lo) / len(shares)
    limits = [lo + width * (i + 1) for i in range(len(shares))]
    writer.add_histogram_raw(tag, min=lo, max=hi, num=1.0, sum=mean, sum_squares=std * std + mean * mean,
                             bucket_limits=limits, bucket_counts=shares, global_step=step)


def export_tensorboard(run_dir: Path | str, out: Optional[Path | str] = None) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    run_dir = Path(run_dir)
    if not read_events(run_dir) and not (run_dir / WATCH).is_file():
        raise CheckpointError(f"{run_dir} holds no run record ({WATCH} or {METRICS}): nothing to export; "
                              "give a folder `babysit train` or a Watch(run_dir=...) wrote")
    out = Path(out) if out else run_dir / "tensorboard"
    check_writable(out / "events")  # the folder takes files, before any work
    writer = SummaryWriter(log_dir=str(out))
    try:
        for e in read_events(run_dir, "train"):
            writer.add_scalar("loss/train", e["train_loss"], e["step"])
            writer.add_scalar("lr", e["lr"], e["step"])
        for e in read_events(run_dir, "eval"):
            writer.add_scalar("loss/val", e["val_loss"], e["step"])
            if "val_acc" in e:  # none for a regression loss
                writer.add_scalar("accuracy/val", e["val_acc"], e["step"])
            if "train_acc" in e:
                writer.add_scalar("accuracy/train", e["train_acc"], e["step"])
        record = WatchRecord(run_dir)
        for s in record.samples:
            step = s["step"]
            writer.add_scalar("grad_norm", s["grad_norm"], step)
            for row in s["layers"]:
                for key in LAYER_SCALARS:
                    if row[key] is not None:
                        writer.add_scalar(f"layers/{row['name']}/{key}", row[key], step)
                lo, hi = record.meta["layers"][row["name"]]["range"]
                _histogram(writer, f"activations/{row['name']}", row["hist"], lo, hi, row["mean"], row["std"], step)
                if row["grad_std"] is not None:
                    g = record.meta["grad_range"] * row["grad_std"]
                    _histogram(writer, f"activation_grads/{row['name']}", row["grad_hist"], -g, g,
                               row["grad_mean"], row["grad_std"], step)
            for p in s["params"]:
                for key in PARAM_SCALARS:
                    if p[key] is not None:
                        writer.add_scalar(f"params/{p['name']}/{key}", p[key], step)
                if p["grad_std"] is not None:
                    g = record.meta["grad_range"] * p["grad_std"]
                    _histogram(writer, f"weight_grads/{p['name']}", p["hist"], -g, g, p["grad_mean"], p["grad_std"], step)
    finally:
        writer.close()
    return out
