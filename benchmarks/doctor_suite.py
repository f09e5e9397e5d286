"""The doctor's benchmark: broken setups that must produce their finding codes, healthy setups
that must produce no warning or error, and auto-repair measured against healthy counterparts.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/doctor_suite.py [--only NAME ...] [--no-repair]

Each setup is one YAML file in benchmarks/broken/: `expect` (codes it must produce; [] for a
healthy setup), `counterpart` (the healthy setup a repair is measured against), `preflight`
(checks run before training, default [data]), and either a spec (`base` preset + `set`
overrides, or a full `spec`) or `builder` (a user's own loop with babysit.Watch, builders.py).
A repair counts when a repair attempt (attempt 1 or later, without an error finding) ends within
REPAIR_TOLERANCE of the counterpart's val loss: the broken run itself never counts. Setups marked
`held_out: true` were never used to calibrate the fixes' constants; their repairs are also counted
apart. Prints a table, `repaired K/N (held-out k/n)` and, last, `recall R, false positives F,
repaired K/N`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent / "broken"
sys.path.insert(0, str(HERE))

from blobs import write_blobs  # noqa: E402

from babysit.repair import train_with_repairs  # noqa: E402
from babysit.spec import load_spec, spec_from_dict  # noqa: E402

REPAIR_TOLERANCE = 0.05  # the bar: within 5% of the healthy counterpart's val loss
MAX_REPAIRS = 3
SHOWN = ("warning", "error")  # what counts as a false positive on a healthy setup


def load_setups(only: list[str] | None) -> list[dict]:
    setups = []
    for path in sorted(HERE.glob("*.yaml")):
        s = yaml.safe_load(path.read_text())
        s["name"] = path.stem
        if not only or s["name"] in only:
            setups.append(s)
    if only:  # counterparts of the chosen broken setups run too
        names = {s["name"] for s in setups}
        for s in list(setups):
            cp = s.get("counterpart")
            if cp and cp not in names:
                setups.append({**yaml.safe_load((HERE / f"{cp}.yaml").read_text()), "name": cp})
                names.add(cp)
    return sorted(setups, key=lambda s: (bool(s["expect"]), s["name"]))  # healthy first


def build_spec(setup: dict, files: dict):
    def fill(v):
        if isinstance(v, str):
            return v.format(**files)
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v
    if "spec" in setup:
        return spec_from_dict(fill(setup["spec"]), setup["name"])
    return load_spec(setup["base"], [fill(o) for o in setup.get("set", [])])


def repaired_val(attempts: list[dict]) -> float | None:
    """The best val loss of the repair attempts (>= 1) that ended without an error finding; None
    when no repair ran."""
    vals = [a["val_loss"] for a in attempts[1:] if a["val_loss"] == a["val_loss"]
            and not any(f["severity"] == "error" for f in a["findings"])]
    return min(vals) if vals else None


def run_setup(setup: dict, files: dict, work: Path, repair: bool) -> dict:
    t0 = time.perf_counter()
    pre = setup.get("preflight", ["data"])
    if "builder" in setup:
        import builders
        found = getattr(builders, setup["builder"])(files)
        return {"found": found, "val": None, "best": None, "changes": [], "s": time.perf_counter() - t0}
    spec = build_spec(setup, files)
    res = train_with_repairs(spec, work / setup["name"], max_repairs=MAX_REPAIRS if repair and setup["expect"] else 0,
                             preflight=pre, echo=lambda *_: None)
    first = res["attempts"][0]
    return {"found": first["findings"], "val": first["val_loss"], "best": repaired_val(res["attempts"]),
            "changes": [c["fix"] for a in res["attempts"] for c in a["changes"]], "s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="run these setups (and their counterparts) only")
    ap.add_argument("--no-repair", action="store_true", help="detection only")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="doctor-suite-"))
    files = {"blobs": str(write_blobs(work / "blobs.npz")),
             "blobs_raw": str(write_blobs(work / "blobs-raw.npz", offset=20.0, spread=300.0))}
    setups = load_setups(args.only)
    healthy_val = {}
    hit = total = fp = repaired = repairable = held_repaired = held_repairable = 0
    rows = []
    for s in setups:
        r = run_setup(s, files, work, not args.no_repair)
        codes = {f["code"] for f in r["found"]}
        shown = sorted({f["code"] for f in r["found"] if f["severity"] in SHOWN})
        if not s["expect"]:
            healthy_val[s["name"]] = r["val"]
            fp += len([f for f in r["found"] if f["severity"] in SHOWN])
            verdict, rep = ("ok" if not shown else "FALSE POSITIVE"), "-"
        else:
            missing = [c for c in s["expect"] if c not in codes]
            hit += len(s["expect"]) - len(missing)
            total += len(s["expect"])
            verdict = "ok" if not missing else f"MISSED {','.join(missing)}"
            rep = "-"
            if r["val"] is not None and not args.no_repair:
                repairable += 1
                ref = healthy_val.get(s.get("counterpart"))
                good = ref is not None and r["best"] is not None and r["best"] <= ref * (1 + REPAIR_TOLERANCE)
                repaired += good
                if s.get("held_out"):
                    held_repairable += 1
                    held_repaired += good
                best = "none" if r["best"] is None else f"{r['best']:.3f}"
                rep = (f"{r['val']:.3f}->{best} vs {ref:.3f} " if ref else f"{best} ") + \
                      ("yes" if good else "NO") + f" [{'+'.join(r['changes']) or 'no fix'}]"
        extra = sorted(codes - set(s["expect"]))
        name = s["name"] + (" (held out)" if s.get("held_out") else "")
        rows.append((name, ",".join(s["expect"]) or "(healthy)", verdict, ",".join(extra) or "-", rep, f"{r['s']:.0f}"))
        print(f"{s['name']}: {verdict}; found {sorted(codes)}; repair {rep} ({r['s']:.0f} s)", flush=True)
    widths = [max(len(str(x[i])) for x in rows + [("setup", "expects", "verdict", "also found", "repair", "s")])
              for i in range(6)]
    print()
    for row in [("setup", "expects", "verdict", "also found", "repair (val: broken->repaired vs healthy)", "s")] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print()
    recall = hit / total if total else 1.0
    print(f"repaired {repaired}/{repairable} (held-out {held_repaired}/{held_repairable})")
    print(f"recall {recall:.2f}, false positives {fp}, repaired {repaired}/{repairable}")


if __name__ == "__main__":
    main()
