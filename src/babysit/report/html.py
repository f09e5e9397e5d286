"""The building blocks of a report page: one self-contained HTML file (styles, scripts and figures
inline; no URL to fetch, so it reads offline and travels as an attachment). Figures are the
matplotlib figures of babysit.report.plots written as inline SVG with their text left as text."""
from __future__ import annotations

import html
import io
import json
import re
from typing import Iterable, Optional

import matplotlib

from babysit.report.plots import plt


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(v) -> str:
    """A number for reading: 4 significant digits, thousands separated; '-' for none."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        return f"{v:,.0f}" if abs(v) >= 1e5 and v.is_integer() else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt(x)}" for k, x in v.items())
    return str(v)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return (f"{hours} h {minutes} min" if hours else f"{minutes} min {s:.0f} s" if minutes else f"{s:.1f} s")


def svg(fig) -> str:
    """The figure as inline SVG, scaled to the page's width; closes the figure."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "babysit"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF with a URL in it
    # drop the fixed size (in pt) of the root element; its viewBox keeps the proportions
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', text, count=1)


def figure(name: str, fig, caption: str = "") -> str:
    return (f'<figure id="fig-{esc(name)}" class="figure">{svg(fig)}'
            + (f"<figcaption>{caption}</figcaption>" if caption else "") + "</figure>")


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def table(columns: list[str], rows: Iterable[list], *, sortable: bool = False, row_class=None,
          html_cols: Iterable[int] = (), id: Optional[str] = None) -> str:
    """rows: lists of cell values; cells in html_cols are HTML already, the others are escaped.
    A sortable table sorts on a click on its header, by each cell's number (data-v) or text."""
    raw = set(html_cols)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = row_class(i) if row_class else None
        cells = []
        for j, v in enumerate(row):
            sort = f' data-v="{v}"' if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else ""
            cells.append(f"<td{sort}>{v if j in raw else esc(fmt(v))}</td>")
        body.append(f"<tr{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{''.join(cells)}</tr>")
    attrs = (f' id="{esc(id)}"' if id else "") + (' class="sortable"' if sortable else "")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def spec_block(title: str, text: str) -> str:
    """A YAML spec, folded (a hundred lines or more; the sections above are what a reader wants first)."""
    return (f"<details class='spec'><summary>{esc(title)} ({len(text.splitlines())} lines)</summary>"
            f"<pre>{esc(text)}</pre></details>")


def section(id: str, title: str, body: str) -> str:
    return f'<section id="{esc(id)}"><h2>{esc(title)}</h2>{body}</section>'


def json_script(id: str, value) -> str:
    """Data for the page's script, safe inside <script> (no '</' can end it early)."""
    return (f'<script type="application/json" id="{esc(id)}">'
            + json.dumps(value, separators=(",", ":")).replace("</", "<\\/") + "</script>")


def page(title: str, verdict: str, sections: list[tuple[str, str, str]]) -> str:
    """sections: (id, title, body HTML), most important first; a menu of them heads the page."""
    nav = " · ".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t, _ in sections)
    body = "".join(section(i, t, b) for i, t, b in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{CSS}</style></head>'
            f'<body><header><h1>{esc(title)}</h1>{verdict}<nav>{nav}</nav></header><main>{body}</main>'
            f'<footer>written by babysit · one file, nothing fetched: open it anywhere</footer>'
            f'<script>{SCRIPT}</script></body></html>')


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#fff;border-bottom:1px solid #dde1e7;padding:16px 28px}
h1{font-size:20px;margin:0 0 10px} h2{font-size:17px;margin:0 0 12px} h3{font-size:14px;margin:16px 0 6px}
main{padding:8px 28px 28px;max-width:1280px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 20px;margin:16px 0}
nav{margin-top:10px;font-size:13px} a{color:#1f5fbf}
.verdict{border-radius:6px;padding:12px 16px;border-left:6px solid}
.verdict .head{font-size:18px;font-weight:600} .verdict .figs{margin-top:4px}
.ok{background:#eaf7ee;border-color:#2e9d57} .warn{background:#fff6e0;border-color:#d99a00}
.bad{background:#fdecec;border-color:#d64545}
table{border-collapse:collapse;font-size:13px;margin:6px 0;max-width:100%}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600} td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer} table.sortable th:hover{background:#e2e6ec}
tr.error td:first-child,.sev-error{color:#c62828;font-weight:600} tr.warning td:first-child{color:#a36b00;font-weight:600}
tr.info td:first-child{color:#1f5fbf} tr.best td{background:#eaf7ee} tr.PRUNED td{color:#8a8f98}
tr.FAIL td{color:#c62828} tr.fail td:nth-child(2){color:#c62828;font-weight:600}
tr.warn td:nth-child(2){color:#a36b00;font-weight:600} tr.pass td:nth-child(2){color:#2e7d32}
.figure{margin:10px 0} svg.plot{width:100%;height:auto;max-width:980px;display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:10px}
pre{background:#f6f7f9;border:1px solid #e4e7ec;padding:10px;overflow:auto;font-size:12px}
details{margin:4px 0} code{background:#f0f2f5;padding:0 3px;border-radius:3px}
.note{color:#5b6270} .edge{color:#a36b00;font-weight:600} footer{color:#8a8f98;padding:0 28px 24px;font-size:12px}
input[type=range]{width:min(520px,100%);vertical-align:middle}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      function key(r) { var c = r.cells[col]; return c && c.dataset.v !== undefined ? parseFloat(c.dataset.v) : (c ? c.textContent : ''); }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x === 'number' && typeof y === 'number') return dir * (x - y);
        if (typeof x === 'number') return -1; if (typeof y === 'number') return 1;
        return dir * String(x).localeCompare(String(y)); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
(function () {
  var data = document.getElementById('layer-data'), slider = document.getElementById('step-slider');
  if (!data || !slider) return;
  var steps = JSON.parse(data.textContent), table = document.getElementById('layer-table');
  var label = document.getElementById('step-label');
  slider.addEventListener('input', function () {
    var s = steps[+slider.value], body = table.tBodies[0];
    label.textContent = s.step.toLocaleString('en');
    body.innerHTML = '';
    s.rows.forEach(function (row) { var tr = body.insertRow();
      row.forEach(function (v) { var td = tr.insertCell(); td.textContent = v; }); });
  });
})();
"""
