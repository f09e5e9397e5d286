"""RUN/report.html: one page per run, most important first: the verdict, the findings (and the
repair attempts), the checklist, the loss curves, the per-layer figures and table, the spec and
the environment."""
from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

from babysit.layout import REPORT, atomic_write_text
from babysit.report.html import duration, esc, figure, fmt, json_script, link, page, spec_block, table
from babysit.report.plots import activation_gradients_figure, activations_figure, run_figures
from babysit.report.readers import RunData, finding_docs
from babysit.watch.table import layer_rows

SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
LEVEL = {"error": "bad", "warning": "warn", "info": "ok"}
# The per-layer table's step slider holds at most this many sampled steps, evenly spread (a
# 200,000-step run samples 1,000: a few hundred keeps the page small and the slider usable).
MAX_TABLE_STEPS = 200


def write_report(run_dir: Path | str, *, summary: Optional[dict] = None,
                 findings: Optional[list[dict]] = None, notes: Sequence[str] = ()) -> Path:
    """Write RUN/report.html; returns its path. summary / findings: see RunData.read; notes: lines
    the verdict adds (where the findings came from, when not from findings.json)."""
    data = RunData.read(run_dir, summary=summary, findings=findings)
    data.notes += list(notes)
    path = data.run_dir / REPORT
    atomic_write_text(path, run_page(data))
    return path


def run_page(data: RunData) -> str:
    name = (data.summary or {}).get("name") or (data.spec or {}).get("name") or data.run_dir.name
    sections = [("findings", "Findings", findings_section(data))]
    if data.repairs:
        sections.append(("repairs", "Repair attempts", repairs_section(data)))
    figures = run_figures(data)
    sections += [("checklist", "Preflight checklist", checklist_section(data)),
                 ("loss", "Loss curves", loss_section(figures)),
                 ("layers", "Per-layer statistics", layers_section(data, figures)),
                 ("spec", "Spec and environment", spec_section(data))]
    return page(f"babysit report: {name}", verdict_html(data), sections)


def _counts(findings: list[dict]) -> dict[str, int]:
    return {s: sum(f.get("severity") == s for f in findings) for s in SEVERITY_RANK}


def verdict(data: RunData) -> tuple[str, str]:
    """(level: ok / warn / bad, headline). Healthy only for a run that finished with no finding;
    a folder without summary.json is a run killed or crashed (or a library-path record)."""
    s, found = data.summary, data.findings
    counts = _counts(found)
    parts = [f"{n} {sev}{'s' if n != 1 and sev != 'info' else ''}" for sev, n in counts.items() if n]
    findings = "healthy" if not found else f"{len(found)} finding{'s' if len(found) != 1 else ''} ({', '.join(parts)})"
    level = "bad" if counts["error"] else "warn" if counts["warning"] else "ok"
    if data.kind == "empty":
        return "bad", "no run record here (no spec.yaml, metrics.jsonl or watch.jsonl)"
    if s is None and data.kind == "library":
        return level, f"library-path record (a Watch's run_dir, no summary.json): {findings}"
    if s is None:
        at = f", last step on record {data.last_step:,}" if data.last_step else ""
        return "bad", f"no summary.json: the run was killed or crashed before it finished{at}; {findings}"
    status = s.get("status") or ("stopped early" if s.get("stopped") else "finished")
    if status == "failed":
        return "bad", f"failed: {findings}"
    if status != "finished":
        return ("bad" if level == "bad" else "warn"), f"{status}: {findings}"
    return level, findings


def verdict_html(data: RunData) -> str:
    level, head = verdict(data)
    s = data.summary or {}
    figs = []
    for key, label in (("train_loss", "train loss"), ("val_loss", "val loss"), ("train_acc", "train acc"),
                       ("val_acc", "val acc")):
        if key in s:
            figs.append(f"{label} <b>{esc(fmt(s[key]))}</b>")
    if s.get("steps") is not None:
        figs.append(f"steps <b>{s['steps']:,}</b>" + (f" of {s['total_steps']:,}" if s.get("total_steps") else ""))
    if s.get("wall_s") is not None:
        figs.append(f"wall time <b>{duration(s['wall_s'])}</b>")
    if s.get("device"):
        figs.append(f"device <b>{esc(s['device'])}</b>")
    lines = [f'<div class="head">{esc(head)}</div>', f'<div class="figs">{" · ".join(figs)}</div>' if figs else ""]
    if s.get("kept_step") is not None:
        lines.append(f'<div>the figures are those of the checkpoint kept at step {s["kept_step"]:,}</div>')
    if s.get("diverged"):
        lines.append(f'<div>the diverged model: {esc(fmt(s["diverged"]))}</div>')
    if s.get("stopped"):
        lines.append(f'<div>stopped: {esc(s["stopped"])}</div>')
    rep = data.repairs
    if rep and rep.get("best") is not None:
        best = rep["attempts"][rep["best"]]
        where = Path(best["run_dir"])
        rel = f"{where.name}/{REPORT}" if best["attempt"] else "#repairs"
        lines.append(f"<div>repaired: the best attempt is {best['attempt']} "
                     f"(val loss {esc(fmt(best.get('val_loss')))}): {link(rel, str(where.name))}</div>")
    for note in data.notes:
        lines.append(f'<div class="note">{esc(note)}</div>')
    return f'<div id="verdict" class="verdict {level}">{"".join(lines)}</div>'


KNOWN = ("severity", "code", "where", "evidence", "advice", "fix", "first_step")


def findings_section(data: RunData) -> str:
    if not data.findings:
        said = ("the doctor found nothing: every rule passed" if data.kind != "empty" or data.summary
                else "no findings on record")
        return f"<p>{said}.</p>"
    docs = finding_docs()
    fired = dict((code, step) for step, code in reversed(data.fired()))
    rows = []
    order = sorted(data.findings, key=lambda f: SEVERITY_RANK.get(f.get("severity"), 3))
    for f in order:
        evidence = esc(fmt(f.get("evidence") or {}))
        extra = {k: v for k, v in f.items() if k not in KNOWN}  # fields a newer doctor adds
        if extra:
            evidence += "<br>" + esc(fmt(extra))
        advice = esc(f.get("advice") or "")
        doc = docs.get(f.get("code", ""))
        if doc:
            advice += (f"<details><summary>about {esc(f['code'])}</summary>"
                       + "".join(f"<div>{esc(line)}</div>" for line in doc.splitlines() if line.strip())
                       + "</details>")
        rows.append([f.get("severity"), f.get("code"), f.get("where") or "-", fired.get(f.get("code")),
                     evidence, advice, f.get("fix") or "-"])
    return table(["severity", "code", "layer", "fired at step", "evidence", "advice", "fix"], rows, html_cols=(4, 5),
                 row_class=lambda i: order[i].get("severity"), id="findings-table")


def repairs_section(data: RunData) -> str:
    rep = data.repairs
    rows, attempts = [], rep.get("attempts", [])
    for a in attempts:
        started = a.get("started")
        started = started if isinstance(started, str) else f"checkpoint at step {started.get('step', '?'):,}"
        changes = "<br>".join(esc(f"{c.get('code')} at {c.get('where') or '-'}: {c.get('change')}")
                              for c in a.get("changes", [])) or "-"
        found = ", ".join(f"{f.get('code')}" + (f" ({f['where']})" if f.get("where") else "")
                          for f in a.get("findings", [])) or "none"
        here = a.get("attempt") == 0
        report = "this page" if here else link(f"{Path(a['run_dir']).name}/{REPORT}", f"{Path(a['run_dir']).name}")
        rows.append([a.get("attempt"), started, changes, a.get("val_loss"), a.get("stopped") or "-", found, report])
    out = table(["attempt", "started from", "what changed", "val loss", "stopped", "findings", "report"], rows,
                html_cols=(2, 6), row_class=lambda i: "best" if attempts[i].get("attempt") == rep.get("best") else None)
    if rep.get("best") is not None:
        out += f"<p>best attempt: <b>{rep['best']}</b> (lowest val loss with no error finding).</p>"
    left = attempts[-1].get("next_changes") if attempts else None
    if rep.get("unrepaired") or (left and rep.get("best") is None):
        out += "<p class='edge'>fixable findings were left when the repairs ran out: raise --max-repairs.</p>"
    return out


def checklist_section(data: RunData) -> str:
    if not data.preflight:
        return "<p>the checklist did not run (train.preflight: false and no doctor).</p>"
    rows = [[r.get("name"), r.get("status"), fmt(r.get("measured") or {}), r.get("expected") or "", r.get("advice") or ""]
            for r in data.preflight]
    return table(["check", "result", "measured", "expected", "advice"], rows,
                 row_class=lambda i: data.preflight[i].get("status"))


def loss_section(figures: dict) -> str:
    out = figure("loss", figures.pop("loss"), "train loss per log window, val loss at evaluations, the "
                 "learning rate on the right axis; the dashed red line is 3x the initial loss (past it the "
                 "run has diverged); dotted lines mark where findings fired.")
    if "accuracy" in figures:
        out += figure("accuracy", figures.pop("accuracy"))
    return out


def layers_section(data: RunData, figures: dict) -> str:
    w = data.watch
    if not w.samples:
        return "<p>no per-layer record (watch.enabled: false, or a search trial).</p>"
    last, first = w.samples[-1], w.samples[0]
    out = [f"<p>distributions at the last sampled step ({last['step']:,}); healthy tanh layers have a std "
           "near 0.65 with a few % saturated, similar gradient spreads across layers and update:data near "
           "-3 (LECTURES.md §3).</p><div class='grid'>"]
    for name in ("activations", "activation_gradients", "weight_gradients", "depth"):
        if name in figures:
            out.append(figure(name, figures.pop(name)))
    out.append("</div>")
    if first is not last and first["layers"]:
        out.append(f"<h3>at the first sampled step ({first['step']:,}): the init</h3><div class='grid'>"
                   + figure("activations-init", activations_figure(w, first))
                   + figure("activation_gradients-init", activation_gradients_figure(w, first)) + "</div>")
    out.append(figure("update_ratio", figures.pop("update_ratio"),
                      "log10 update:data per weight over time; the dashed line is -3 (LECTURES.md §2 item 10)."))
    out.append(layer_table(data))
    return "".join(out)


def layer_table(data: RunData) -> str:
    """The per-layer table (babysit stats) at the last sampled step, with a slider over steps."""
    w = data.watch
    n, k = len(w.samples), MAX_TABLE_STEPS
    # evenly spread, keeping the first (the init) and the last
    samples = [w.samples[round(i * (n - 1) / (k - 1))] for i in range(k)] if n > k else w.samples
    rows_at = [layer_rows(w, s) for s in samples]
    columns = list(dict.fromkeys(k for rows in rows_at for r in rows for k in r))
    steps = [{"step": s["step"], "rows": [[fmt(r.get(c)) for c in columns] for r in rows]}
             for s, rows in zip(samples, rows_at)]
    return (f"<h3>per-layer table (babysit stats) at step <span id='step-label'>{samples[-1]['step']:,}</span></h3>"
            f"<input type='range' id='step-slider' min='0' max='{len(samples) - 1}' value='{len(samples) - 1}' "
            f"aria-label='sampled step'> <span class='note'>{len(samples)} sampled steps</span>"
            + table(columns, [[r.get(c) for c in columns] for r in rows_at[-1]], id="layer-table")
            + json_script("layer-data", steps))


def environment(data: RunData) -> list[tuple[str, str]]:
    """What ran this: versions (of the process writing the report, normally the run's own), device, seed."""
    import torch

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "-"

    s = data.summary or {}
    return [("babysit", version("babysit")), ("python", platform.python_version()), ("torch", torch.__version__),
            ("numpy", version("numpy")), ("platform", platform.platform()),
            ("device", s.get("device") or "-"), ("parameters", fmt(s.get("parameters"))),
            ("seed", fmt((data.spec or {}).get("seed"))), ("torch threads", str(torch.get_num_threads())),
            ("run folder", str(data.run_dir))]


def spec_section(data: RunData) -> str:
    env = table(["", ""], environment(data))
    spec = (spec_block("resolved spec (spec.yaml)", data.spec_text) if data.spec_text
            else "<p>no spec.yaml (a library-path record: the model and loop were the user's).</p>")
    return f"<h3>environment</h3>{env}{spec}"
