"""`babysit train SPEC --seeds N`: N independent members (seeds seed..seed+N-1: different init,
dropout masks and batch order, the same data) in PARENT/member-K, and their ensemble in
PARENT/summary.json (and PARENT/report.html, the members beside their ensemble). LECTURES.md §1 (L7): averaging independent models gains "a couple percent"."""
from __future__ import annotations

from pathlib import Path

from babysit.data import build_data
from babysit.errors import TrainingError
from babysit.layout import SUMMARY, write_json
from babysit.losses import build_loss
from babysit.report.callback import write_end_report
from babysit.session import build_trainer
from babysit.spec import Spec
from babysit.train.evaluate import evaluate

MEMBER_DIR = "member-{}"


def member_spec(spec: Spec, k: int) -> Spec:
    return spec.model_copy(update={"seed": spec.seed + k, "name": f"{spec.name}-member-{k}"})


def train_members(spec: Spec, parent: Path | str, n: int, *, progress: bool = True, on_member=None) -> dict:
    if n < 1:
        raise TrainingError(f"--seeds must be >= 1, got {n}")
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    if (parent / SUMMARY).exists():
        raise TrainingError(f"{parent} already holds a run; choose another --out (nothing was overwritten)")
    data = build_data(spec.data)  # once: every member sees the very same splits
    trainers, members = [], []
    for k in range(n):
        t = build_trainer(member_spec(spec, k), parent / MEMBER_DIR.format(k), progress=progress, data=data)
        members.append(t.fit())
        trainers.append(t)
        if on_member is not None:
            on_member(k, members[-1])
    models = [t.model for t in trainers]
    summary = {"kind": "ensemble", "name": spec.name, "seeds": [spec.seed + k for k in range(n)],
               "members": [MEMBER_DIR.format(k) for k in range(n)]}
    for split_name, split in (("val", trainers[0].val_split), ("test", data.test)):
        if len(split) == 0:
            continue
        r = evaluate(models, split, loss=build_loss(spec.loss))
        summary.update({f"{split_name}_loss": r["loss"], f"{split_name}_acc": r["acc"],
                        f"mean_member_{split_name}_acc": r["mean_member_acc"],
                        f"member_{split_name}_acc": r["member_acc"]})
    write_json(parent / SUMMARY, summary)
    write_end_report(spec, parent)
    return summary
