"""The reports of many runs: a search folder (SEARCH/report.html: the trials, each parameter
against the val loss stage by stage, the warnings, links to the best runs' reports) and a
`--seeds` folder (PARENT/report.html: the members and their ensemble side by side)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from babysit.layout import REPORT, atomic_write_text
from babysit.report.html import esc, figure, fmt, link, page, spec_block, table
from babysit.report.plots import ensemble_figure, search_figures
from babysit.report.readers import EnsembleData, SearchData, finite, report_kind
from babysit.report.run_page import verdict, write_report

# The search report links the reports of the last stage's best few trials (writing those that are
# missing: trials run without one); three is the table's top at a glance.
BEST_REPORTS = 3


def _relative(target: Path, base: Path) -> str:
    return target.relative_to(base).as_posix()


def _ensure_report(run_dir: Path) -> Path:
    """The run's report, written now when the run ended without one."""
    path = run_dir / REPORT
    return path if path.is_file() else write_report(run_dir)


def write_search_report(out: Path | str) -> Path:
    data = SearchData.read(out)
    best_links = {}
    for t in data.best_trials(BEST_REPORTS):
        run_dir = data.trial_dir(t)
        if run_dir.is_dir():
            best_links[t["number"]] = _relative(_ensure_report(run_dir), data.out)
    path = data.out / REPORT
    atomic_write_text(path, search_page(data, best_links))
    return path


def search_verdict(data: SearchData) -> str:
    states = Counter(t.get("state") for t in data.trials)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    b = data.best
    if b is None:
        level, head = "bad", "no trial finished: no best value"
    else:
        params = ", ".join(f"{k}={fmt(v)}" for k, v in b.get("params", {}).items())
        level = "warn" if data.edge or states.get("FAIL") else "ok"
        head = f"best: trial {b['number']} (stage {b['stage'] + 1}), val loss {fmt(b.get('value'))} with {params}"
    lines = [f'<div class="head">{esc(head)}</div>',
             f'<div class="figs">{len(data.trials)} trials ({esc(counts)}) · {len(data.stages) or "?"} stages · '
             f'{data.compute_steps:,} training steps run</div>']
    lines += [f'<div class="edge">best at the edge: {esc(w)}</div>' for w in data.edge]
    return f'<div id="verdict" class="verdict {level}">{"".join(lines)}</div>'


def search_page(data: SearchData, best_links: dict[int, str]) -> str:
    names = list(data.params)
    order = sorted(data.trials, key=lambda t: (t.get("stage", 0), t["value"] if finite(t.get("value")) is not None
                                               else float("inf"), t["number"]))
    best_number = (data.best or {}).get("number")
    rows = []
    for t in order:
        loss = t.get("value") if finite(t.get("value")) is not None else \
            {"PRUNED": "pruned", "FAIL": "failed"}.get(t.get("state"), "-")
        report = link(best_links[t["number"]], "report") if t["number"] in best_links else ""
        rows.append([t["number"], t.get("stage", 0) + 1, t.get("state", "").lower(),
                     *[t.get("params", {}).get(n) for n in names], t.get("steps"), loss, esc(t.get("note") or ""), report])
    trials = table(["#", "stage", "state", *names, "steps", "val loss", "note", "report"], rows, sortable=True,
                   html_cols=(len(names) + 5, len(names) + 6), id="trials-table",
                   row_class=lambda i: "best" if order[i]["number"] == best_number else order[i].get("state"))
    trials = "<p class='note'>click a header to sort; pruned trials are grey, failed ones red, the best green.</p>" + trials
    figs = search_figures(data)
    params = "<div class='grid'>" + "".join(
        figure(f"param-{n}", f) for n, f in figs.items()) + "</div>" if figs else "<p>no trial has run yet.</p>"
    stages = "".join(f"<li>stage {s + 1}: {st.get('trials') or 'grid'} trials x {fmt(st.get('steps'))} steps</li>"
                     for s, st in enumerate(data.stages))
    notes = "".join(f"<li>before stage {int(s) + 1}: {esc(n)}</li>" for s, ns in sorted(data.notes.items()) for n in ns)
    warnings = "".join(f"<li class='edge'>{esc(w)}</li>" for w in data.edge)
    narrowing = (f"<ul>{stages}</ul><h3>narrowing and warnings</h3>"
                 + (f"<ul>{warnings}{notes}</ul>" if warnings or notes else "<p>no warning: every best value lies "
                    "inside its range.</p>"))
    best = ("<ul>" + "".join(f"<li>{link(href, f'trial {n}')}</li>" for n, href in best_links.items()) + "</ul>"
            if best_links else "<p>no trial folder to link (no trial finished).</p>")
    if (data.out / "best.yaml").is_file():
        best += f"<p>the winner as a complete spec: {link('best.yaml', 'best.yaml')} (babysit train best.yaml)</p>"
    spec = spec_block("search.yaml", data.spec_text) if data.spec_text else "<p>no search.yaml.</p>"
    return page(f"babysit search report: {data.out.name}", search_verdict(data), [
        ("trials", "Trials", trials), ("params", "Parameters against val loss", params),
        ("stages", "Stages", narrowing), ("best", "Best runs", best), ("spec", "Searched spec", spec)])


def write_ensemble_report(parent: Path | str) -> Path:
    data = EnsembleData.read(parent)
    for m in data.members:
        if m.run_dir.is_dir():
            _ensure_report(m.run_dir)
    path = data.parent / REPORT
    atomic_write_text(path, ensemble_page(data))
    return path


def ensemble_page(data: EnsembleData) -> str:
    s = data.summary
    n = len(data.members)
    gain = (100 * (s["val_acc"] - s["mean_member_val_acc"])
            if finite(s.get("val_acc")) is not None and finite(s.get("mean_member_val_acc")) is not None else None)
    if finite(s.get("val_loss")) is None:
        level, head = "bad", f"no ensemble summary: {n} member folder(s), the ensemble was not evaluated"
    else:
        level = "ok" if gain is None or gain >= 0 else "warn"
        head = (f"ensemble of {n}: val loss {fmt(s['val_loss'])}, val acc {fmt(s.get('val_acc'))}"
                + (f" (mean member {fmt(s['mean_member_val_acc'])}, gain {gain:+.2f} points)" if gain is not None else ""))
    verdict_div = f'<div id="verdict" class="verdict {level}"><div class="head">{esc(head)}</div></div>'
    seeds = s.get("seeds") or [None] * n
    rows = []
    for k, m in enumerate(data.members):
        ms = m.summary or {}
        rows.append([m.run_dir.name, seeds[k] if k < len(seeds) else None, ms.get("train_loss"), ms.get("val_loss"),
                     ms.get("val_acc"), verdict(m)[1], link(f"{m.run_dir.name}/{REPORT}", "report")])
    rows.append(["ensemble", "-", None, s.get("val_loss"), s.get("val_acc"), "average of the members' probabilities", ""])
    if finite(s.get("test_acc")) is not None:
        rows.append(["ensemble (test)", "-", None, s.get("test_loss"), s.get("test_acc"), "", ""])
    members = table(["member", "seed", "train loss", "val loss", "val acc", "verdict", "report"], rows, html_cols=(6,),
                    id="members-table", row_class=lambda i: "best" if rows[i][0] == "ensemble" else None)
    spec = next((m.spec_text for m in data.members if m.spec_text), None)
    spec_html = (spec_block("member 0's spec (the others differ in seed and name only)", spec)
                 if spec else "<p>no member spec.</p>")
    return page(f"babysit ensemble report: {data.parent.name}", verdict_div, [
        ("members", "Members and ensemble", members + figure("ensemble", ensemble_figure(data))),
        ("spec", "Spec", spec_html)])


def write_folder_report(path: Path | str, **run_kw) -> Path:
    """`babysit report PATH`: the search, ensemble or run report, whichever PATH holds."""
    kind = report_kind(Path(path))
    if kind == "search":
        return write_search_report(path)
    if kind == "ensemble":
        return write_ensemble_report(path)
    return write_report(path, **run_kw)
