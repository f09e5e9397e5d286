"""What every lab is made of: a size (a frozen dataclass: the default, a --full one, and smaller
ones the tests pass), a run function that measures and draws, and a LabResult that holds the
tables, the lecture's claims with whether they held on the numbers, and the figures. `run_lab`
writes DIR/results.json and the PNGs directly in DIR and prints the tables, claims last."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from babysit.build import select_device
from babysit.errors import TrainingError
from babysit.layout import atomic_write_text
from babysit.registry import Registry
from babysit.report.plots import plt

RESULTS = "results.json"
FIGURE_DPI = 110  # as `babysit plot` writes its figures
CPU_THREADS = 1  # torch threads while a lab runs on the CPU (see run_lab)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def text(self) -> str:
        """Plain text, the title above: columns holding numbers right-aligned, the others left-aligned."""
        cells = [self.columns] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        numeric = [any(isinstance(row[i], (int, float)) for row in self.rows) for i in range(len(self.columns))]

        def line(r):
            return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)).rstrip()
        return "\n".join([self.title, line(cells[0]), "  ".join("-" * w for w in widths),
                          *(line(r) for r in cells[1:])])


@dataclass
class Claim:
    """A sentence of the lectures, whether it held on our numbers, and the numbers."""
    text: str
    held: bool
    measured: str


@dataclass
class LabResult:
    out: Path  # the lab's folder: figures and results.json go directly in it
    tables: list[Table] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # file names in the lab's folder
    data: dict = field(default_factory=dict)  # the raw numbers, for results.json

    def save(self, fig, name: str) -> None:
        """Write figure `fig` as OUT/name.png and list it."""
        fig.savefig(self.out / f"{name}.png", dpi=FIGURE_DPI, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(f"{name}.png")

    def claim(self, text: str, held: bool, measured: str) -> bool:
        self.claims.append(Claim(text, bool(held), measured))
        return bool(held)

    def claims_table(self) -> Table:
        return Table("claims", ["claim", "held", "measured"],
                     [[c.text, "yes" if c.held else "NO", c.measured] for c in self.claims])


@dataclass(frozen=True)
class Lab:
    name: str
    about: str  # one line for `babysit lab --list`
    run: Callable[..., None]  # run(size, result, device, echo): fills the LabResult
    default: Any  # the size a plain `babysit lab NAME` runs (under two minutes on two CPU cores)
    full: Any  # --full: the lecture's own size


LABS: Registry[Lab] = Registry("lab")


def run_lab(name: str, out: Path, *, full: bool = False, size: Any = None, device: Optional[torch.device] = None,
            echo: Callable[[str], None] = print) -> LabResult:
    """Run lab `name` at its default size (--full: the full one; `size`: any other) into `out`."""
    lab = LABS[name]
    if size is None:
        size, label = (lab.full, "full") if full else (lab.default, "default")
    else:
        label = "custom"
    device = device or select_device()
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        raise TrainingError(f"{out} is not empty: a lab writes its figures, results.json and runs/ there; "
                            "choose another --out (nothing was overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = LabResult(out)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # The labs' nets are small (batch 32, layers of 100-500 units): a second thread only adds
        # synchronisation. Measured on the two shared cores: the batchnorm lab's test took 47 s
        # with torch's 2 threads and 14 s with 1, under the same load.
        torch.set_num_threads(CPU_THREADS)
    try:
        lab.run(size, result, device, echo)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    atomic_write_text(out / RESULTS, json.dumps(_jsonable({
        "lab": name, "size": label,
        "config": dataclasses.asdict(size), "device": str(device), "wall_s": round(wall, 1),
        "tables": [dataclasses.asdict(t) for t in result.tables],
        "claims": [dataclasses.asdict(c) for c in result.claims],
        "figures": result.figures, "data": result.data}), indent=1))
    for table in [*result.tables, result.claims_table()]:
        echo("")
        echo(table.text())
    held = sum(c.held for c in result.claims)
    echo(f"\n{name}: {held}/{len(result.claims)} claims held; {wall:.0f} s on {device}; "
         f"{len(result.figures)} figures and {RESULTS} in {out}")
    return result


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if v != v else "inf"
        return f"{v:.3g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4g}"
    return "-" if v is None else str(v)


def _jsonable(v: Any) -> Any:
    """JSON has no NaN or infinity: None and strings instead (as the run records write them)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if v != v else str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v
