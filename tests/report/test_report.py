"""The HTML report's content, without a browser: one self-contained file, the sections in order,
verdicts that never call a broken run healthy, findings and layer rows read generically, the
search's results.json drawn by the same reader as its PNGs, and the train.report switch."""
import json
import re
from html.parser import HTMLParser

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import babysit
from babysit.cli import main
from babysit.layout import FINDINGS, REPORT, SUMMARY
from babysit.report.plots import search_figures, write_search_plots
from babysit.report.readers import SEARCH_RESULTS, RunData, SearchData, finding_docs
from babysit.report.run_page import MAX_TABLE_STEPS, write_report
from babysit.search.report import RESULTS_FILE, edge_warnings
from babysit.spec.search import ParamSpec

pytestmark = pytest.mark.report
RUN_SECTIONS = ["verdict", "findings", "checklist", "loss", "layers", "spec"]
TINY = ["train.steps=300", "schedule.milestones=[150]", "train.eval_every=100", "train.log_every=50",
        "model.hidden=[16]", "watch.every=25"]


class Links(HTMLParser):
    """Every src / href / xlink:href value, and the ids, of a page."""

    def __init__(self):
        super().__init__()
        self.urls, self.ids = [], []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "xlink:href"):
                self.urls.append(v)
            elif k == "id":
                self.ids.append(v)


def parse(path):
    p = Links()
    p.feed(path.read_text())
    return p


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """makemore-original shrunk: N(0, 1) init everywhere; the doctor finds init-loss-high and
    saturated-activations, and the Trainer writes the report at the end (train.report's default)."""
    run = tmp_path_factory.mktemp("original")
    babysit.build_trainer(babysit.load_spec("makemore-original", TINY), run, progress=False).fit()
    return run


def test_the_trainer_writes_a_self_contained_report_with_every_section(original):
    page = parse(original / REPORT)
    text = (original / REPORT).read_text()
    assert not [u for u in page.urls if re.match(r"(?i)\s*https?:", u or "")]
    assert "<link rel=\"stylesheet\"" not in text and "<script src" not in text
    positions = [page.ids.index(s) for s in RUN_SECTIONS]
    assert positions == sorted(positions)  # most important first
    # codes, layer names and numbers are HTML text, not pixels
    found = json.loads((original / FINDINGS).read_text())["findings"]
    assert {"init-loss-high", "saturated-activations"} <= {f["code"] for f in found}
    for f in found:
        assert f">{f['code']}<" in text and f">{f['where']}<" in text
    warnings = sum(f["severity"] == "warning" for f in found)
    assert warnings == len(found) and f"{len(found)} findings ({warnings} warnings)" in text
    assert "healthy" not in text.split("<main>")[0]
    summary = json.loads((original / SUMMARY).read_text())
    assert f"{summary['val_loss']:.4g}" in text
    # loss, accuracy, the layer figures at the last and the first sample, update:data: inline SVG
    figures = re.findall(r'<figure id="fig-([^"]+)"', text)
    assert {"loss", "accuracy", "activations", "activation_gradients", "weight_gradients", "depth",
            "update_ratio", "activations-init"} <= set(figures)
    assert text.count("<svg") == len(figures)


def test_the_loss_figure_marks_where_findings_fired_and_the_three_x_line(original):
    data = RunData.read(original)
    fired = dict((code, step) for step, code in data.fired())
    written = {f["code"]: f["first_step"] for f in data.findings}
    assert fired == written and written["init-loss-high"] == written["saturated-activations"] == 100
    first = data.first_loss()
    assert first == data.watch.losses[0] and first > 2 * 3.2958  # N(0, 1) init: over twice ln(27)
    text = (original / REPORT).read_text()
    assert f"{3 * first:.3g}" in text and "a finding fired" in text


def test_the_layer_table_steps_through_the_sampled_steps(original):
    text = (original / REPORT).read_text()
    steps = json.loads(re.search(r'<script type="application/json" id="layer-data">(.*?)</script>', text).group(1))
    record = RunData.read(original).watch
    assert [s["step"] for s in steps] == [s["step"] for s in record.samples]  # 13 samples: none thinned
    assert steps[0]["rows"][0][0] == "act1" and len(steps) <= MAX_TABLE_STEPS


def test_a_killed_run_is_not_called_healthy(tmp_path, tiny_names_spec):
    run = tmp_path / "run"
    babysit.build_trainer(tiny_names_spec("watch.every=50"), run, progress=False).fit()
    assert 'class="verdict bad"' not in (run / REPORT).read_text()
    (run / SUMMARY).unlink()
    (run / FINDINGS).unlink()
    r = CliRunner().invoke(main, ["report", str(run)], catch_exceptions=False)
    assert r.exit_code == 0 and f"wrote {run / REPORT}" in r.output
    text = (run / REPORT).read_text()
    assert "no summary.json: the run was killed or crashed before it finished, last step on record 300" in text
    assert 'class="verdict bad"' in text and "findings above come from `babysit doctor`" in text


def test_a_run_the_doctor_stops_ends_with_its_report(tmp_path, tiny_names_spec):
    run = tmp_path / "run"
    summary = babysit.build_trainer(tiny_names_spec("optim.lr=50", "train.log_every=2", "watch.every=10",
                                                    "train.steps=400"), run, progress=False).fit()
    assert "loss-diverged" in summary["stopped"] and summary["steps"] < 400
    text = (run / REPORT).read_text()
    assert 'class="verdict bad"' in text and ">loss-diverged<" in text and "healthy" not in text.split("<main>")[0]
    assert f"stopped: {summary['stopped']}" in text.replace("&#x27;", "'")
    assert '<figure id="fig-loss"' in text


def test_a_run_gone_non_finite_ends_with_its_report(tmp_path):
    """benchmarks/broken/broken-names-lr-nan shrunk: ReLU at lr 50 overflows to NaN within a few
    steps; every statistic on record is null (the doctor suite found the figures crashing on them)."""
    spec = babysit.load_spec("makemore-kaiming", ["train.steps=200", "schedule.milestones=[100]", "train.log_every=50",
                                                  "train.eval_every=100", "watch.every=50", "model.activation=relu",
                                                  "optim.lr=50", "model.hidden=[32]"])
    run = tmp_path / "run"
    summary = babysit.build_trainer(spec, run, progress=False).fit()
    assert "non-finite" in summary["stopped"]
    text = (run / REPORT).read_text()
    assert 'class="verdict bad"' in text and ">non-finite<" in text and "train_loss=NaN" in text  # the diverged model's figures
    assert "no finite gradient at this step" in text and "mean NaN, std NaN" in text


def test_a_report_that_fails_to_draw_costs_the_run_nothing(tmp_path, tiny_names_spec, monkeypatch):
    def broken(data):
        raise ValueError("a figure bug")

    monkeypatch.setattr("babysit.report.run_page.run_page", broken)
    with pytest.warns(UserWarning, match="a bug in babysit.report(.|\n)*ValueError: a figure bug"):
        summary = babysit.build_trainer(tiny_names_spec(steps=100), tmp_path / "run", progress=False).fit()
    assert summary["steps"] == 100 and (tmp_path / "run" / SUMMARY).is_file() and not (tmp_path / "run" / REPORT).exists()


def test_a_failed_run_shows_the_kept_checkpoint_and_the_diverged_figures(tmp_path, tiny_names_spec):
    run = tmp_path / "run"
    summary = babysit.build_trainer(tiny_names_spec("train.report=false"), run, progress=False).fit()
    assert not (run / REPORT).exists()
    # issue 14's ending: status, kept_step, the diverged model's figures (NaN written as null)
    summary.update(status="failed", kept_step=200, stopped="doctor: loss-diverged at - by step 300",
                   diverged={"train_loss": None, "step": 300})
    (run / SUMMARY).write_text(json.dumps(summary))
    text = write_report(run).read_text()
    assert 'class="verdict bad"' in text and "failed: healthy" not in text and ">failed: " in text
    assert "checkpoint kept at step 200" in text and "the diverged model: train_loss=-, step=300" in text


def test_findings_are_read_generically_with_their_documentation(tmp_path, tiny_names_spec):
    run = tmp_path / "run"
    babysit.build_trainer(tiny_names_spec("train.report=false"), run, progress=False).fit()
    new = {"code": "input-not-normalized", "severity": "error", "where": "input", "evidence": {"mean": 7.5},
           "advice": "standardize the inputs", "fix": None, "first_step": 100, "confidence": "high"}
    (run / FINDINGS).write_text(json.dumps({"step": 300, "stopped": None, "findings": [new]}))
    doc = tmp_path / "findings.md"
    doc.write_text("# Findings\n\n## input-not-normalized\nFires when: |mean| > 0.5 std\nFix: data.preprocess\n"
                   "\n## `other-code`\nFires when: never\n")
    assert finding_docs(doc) == {"input-not-normalized": "Fires when: |mean| > 0.5 std\nFix: data.preprocess",
                                 "other-code": "Fires when: never"}
    assert finding_docs(tmp_path / "missing.md") == {}
    text = write_report(run).read_text()
    assert ">input-not-normalized<" in text and "mean=7.5" in text and "confidence=high" in text
    assert "1 finding (1 error)" in text and 'class="verdict bad"' in text


def test_a_library_path_record_gets_a_report_with_the_doctors_findings(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.Tanh(), torch.nn.Linear(64, 5))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=3.0)  # saturates the tanh
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    watch = babysit.Watch(model, opt, every=10, run_dir=tmp_path / "mine")
    x, y = torch.randn(512, 10), torch.randint(0, 5, (512,))
    for i in range(300):
        loss = F.cross_entropy(model(x[i % 8 * 64:(i % 8 + 1) * 64]), y[i % 8 * 64:(i % 8 + 1) * 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
    watch.close()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "mine")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    text = (tmp_path / "mine" / REPORT).read_text()
    assert "library-path record (a Watch&#x27;s run_dir, no summary.json)" in text
    assert ">saturated-activations<" in text and 'id="fig-activations"' in text
    assert "train (mean of 6 steps)" in text  # the per-step losses, averaged into 50 windows


def test_the_search_png_and_html_figures_come_from_one_reader(tmp_path):
    assert SEARCH_RESULTS == RESULTS_FILE
    trials = [{"number": i, "stage": s, "state": st, "params": {"optim.lr": lr}, "steps": 40 * (s + 1),
               "value": v, "note": ""} for i, (s, st, lr, v) in enumerate(
        [(0, "COMPLETE", 0.01, 3.1), (0, "COMPLETE", 0.3, 2.7), (0, "PRUNED", 20.0, None),
         (1, "COMPLETE", 0.2, 2.5), (1, "FAIL", 0.5, None)])]
    (tmp_path / SEARCH_RESULTS).write_text(json.dumps({
        "trials": trials, "best": trials[3], "compute_steps": 200, "notes": {},
        "params": {"optim.lr": {"type": "log_uniform", "low": 1e-3, "high": 30.0, "log": True}},
        "spaces": {"0": {"optim.lr": {"type": "log_uniform", "low": 1e-3, "high": 30.0}},
                   "1": {"optim.lr": {"type": "log_uniform", "low": 0.1, "high": 1.0}}},
        "stages": [{"trials": 3, "steps": 40}, {"trials": 2, "steps": 80}], "edge": []}))
    data = SearchData.read(tmp_path)
    fig = search_figures(data)["optim.lr"]
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["stage 1 (40 steps)", "stage 2 (80 steps)", "pruned (no val loss)", "failed (no val loss)",
                      "best"]
    assert [p.name for p in write_search_plots(tmp_path)] == ["optim_lr.png"]
    assert [t["number"] for t in data.best_trials(3)] == [3]
    r = CliRunner().invoke(main, ["report", str(tmp_path)], catch_exceptions=False)  # a search folder
    text = (tmp_path / REPORT).read_text()
    assert r.exit_code == 0 and "babysit search report" in text and 'id="fig-param-optim.lr"' in text
    assert "5 trials (3 complete, 1 fail, 1 pruned)" in text


def test_a_200000_step_record_logged_every_step_stays_under_3_mb(tmp_path, tiny_names_spec):
    """Issue 17: at most 3 MB for a 200,000-step run. The short run's record is grown to that length
    at its densest: a train window per step (log_every 1) and 1,000 per-layer samples (watch.every
    200, the default); the full makemore-bn run measures 0.25 MB (benchmarks/report_cost.py)."""
    run = tmp_path / "run"
    babysit.build_trainer(tiny_names_spec("train.report=false", "watch.every=50"), run, progress=False).fit()
    steps, every = 200_000, 200
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in lines if e["kind"] == "eval"]
    grown = [{"kind": "train", "step": s, "train_loss": 2.0 + (s % 97) / 97, "lr": 0.1 if s <= steps // 2 else 0.01}
             for s in range(1, steps + 1)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in grown + evals))
    watch = (run / "watch.jsonl").read_text().splitlines()
    sample = json.loads(next(line for line in reversed(watch) if '"kind": "sample"' in line))
    watch += [json.dumps({**sample, "step": s}) for s in range((sample["step"] // every + 1) * every, steps + 1, every)]
    (run / "watch.jsonl").write_text("\n".join(watch) + "\n")
    text = write_report(run).read_text()
    assert len(text.encode()) <= 3_000_000
    table = json.loads(re.search(r'<script type="application/json" id="layer-data">(.*?)</script>', text).group(1))
    assert len(RunData.read(run).watch.samples) > 1_000 and len(table) == MAX_TABLE_STEPS
    assert table[0]["step"] == 1 and table[-1]["step"] == steps and "200,000" in text


def test_babysit_train_writes_the_report_unless_the_spec_says_not(tmp_path):
    args = ["train", "makemore-bn", "--quiet", *[a for o in TINY for a in ("--set", o)]]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "on")], catch_exceptions=False)
    assert r.exit_code == 0 and f"report: {tmp_path / 'on' / REPORT}" in r.output
    r = CliRunner().invoke(main, [*args, "--set", "train.report=false", "--out", str(tmp_path / "off")],
                           catch_exceptions=False)
    assert r.exit_code == 0 and "report:" not in r.output and not (tmp_path / "off" / REPORT).exists()


def test_a_best_value_at_the_edge_of_the_last_stage_is_warned_about():
    from types import SimpleNamespace as NS

    last = {"optim.lr": ParamSpec(type="log_uniform", low=0.1, high=1.0),
            "optim.weight_decay": ParamSpec(type="log_uniform", low=1e-6, high=1e-1),
            "model.activation": ParamSpec(type="categorical", choices=["tanh", "relu"])}
    best = NS(stage=1, params={"optim.lr": 0.95, "optim.weight_decay": 1e-4, "model.activation": "relu"})
    result = NS(best=best, spaces={1: last}, search=NS(params={}))
    # 0.95 lies within the top tenth of [0.1, 1] in log space; 1e-4 in the middle of its range
    assert edge_warnings(result) == ["optim.lr: the best value 0.95 sits at the high edge of the last stage's "
                                     "range [0.1, 1] (log scale); widen that side and search again"]
    assert edge_warnings(NS(best=None)) == []
