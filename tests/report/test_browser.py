"""The four report kinds opened in headless Chromium with the network closed (issue 17): a healthy
makemore run, the makemore-original repair, a search of a few trials and a seeds ensemble. Each
page loads with no console error, holds every section, draws every figure at a readable size and
not blank, and its links to other reports open pages that pass the same checks. The harness itself
is shown to fail on a page with a script error, a remote fetch or a blank figure.

Set BABYSIT_SCREENSHOTS=DIR to keep each page's screenshot (the top a reader sees first)."""
import json
from pathlib import Path

import pytest
from browser import check_page, chromium, need_browser, open_report

import babysit
from babysit.layout import REPAIRS, REPORT
from babysit.repair import train_with_repairs
from babysit.search.driver import run_search
from babysit.seeds import train_members
from babysit.spec import load_spec

pytestmark = pytest.mark.report
RUN_SECTIONS = ["verdict", "findings", "checklist", "loss", "layers", "spec"]
SEARCH_SECTIONS = ["verdict", "trials", "params", "stages", "best", "spec"]
ENSEMBLE_SECTIONS = ["verdict", "members", "spec"]
# makemore shrunk to seconds: the same data and model family, a short budget
SHORT = ["train.eval_every=100", "train.log_every=50", "watch.every=50"]


@pytest.fixture(scope="module")
def driver():
    need_browser()
    with chromium() as d:
        yield d


def verdict(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "verdict").text


def follow(driver, link_text: str, sections: list[str], name: str) -> Path:
    """Open the report a link points at and check it too; returns its path."""
    from selenium.webdriver.common.by import By

    href = driver.find_element(By.LINK_TEXT, link_text).get_attribute("href")
    assert href.startswith("file://") and href.endswith(REPORT), href
    path = Path(href.removeprefix("file://"))
    check_page(driver, path, sections, name)
    return path


def test_the_harness_fails_on_a_script_error_a_remote_fetch_and_a_blank_figure(driver, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                      '<img src="https://cdn.example.org/plot.png"><script>notDefined()</script></body></html>')
    errors = open_report(driver, broken)
    assert any("notDefined" in e["message"] for e in errors)
    assert any("cdn.example.org" in e["message"] and "ERR_NAME_NOT_RESOLVED" in e["message"] for e in errors)
    blank = tmp_path / "blank.html"
    blank.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><h1>A page</h1><p>with text'
                     ' in colour</p><section id="a"><figure id="fig-x"><svg viewBox="0 0 400 200" style="width:400px"></svg></figure>'
                     '</section></body></html>')
    with pytest.raises(AssertionError, match="fig-x renders blank"):
        check_page(driver, blank, ["a"], "blank")
    with pytest.raises(AssertionError, match="section #b missing"):
        check_page(driver, blank, ["a", "b"], "blank")
    empty = tmp_path / "empty.html"
    empty.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body></body></html>')
    with pytest.raises(AssertionError, match="renders blank"):
        check_page(driver, empty, [], "empty")


def test_a_healthy_makemore_run(driver, tmp_path):
    from selenium.webdriver.common.by import By

    spec = load_spec("makemore-bn", ["train.steps=600", "schedule.milestones=[300]", "model.hidden=[32]", *SHORT])
    run = tmp_path / "run"
    summary = babysit.build_trainer(spec, run, progress=False).fit()
    sizes = check_page(driver, run / REPORT, RUN_SECTIONS, "run-healthy")
    assert {"fig-loss", "fig-accuracy", "fig-activations", "fig-activation_gradients", "fig-weight_gradients",
            "fig-depth", "fig-update_ratio"} <= set(sizes)
    head = verdict(driver)
    assert head.startswith("healthy\n") and f"val loss {summary['val_loss']:.4g}" in head
    assert "steps 600 of 600" in head and "device cpu" in head
    # the layer table's slider steps back to the first sampled step (step 1)
    label, slider = driver.find_element(By.ID, "step-label"), driver.find_element(By.ID, "step-slider")
    assert label.text == "600"
    driver.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert label.text == "1"
    rows = driver.find_elements(By.CSS_SELECTOR, "#layer-table tbody tr")
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == "act1"


def test_the_makemore_original_repair(driver, tmp_path):
    spec = load_spec("makemore-original", ["train.steps=300", "schedule.milestones=[150]", "model.hidden=[16]",
                                           "watch.every=25", "train.eval_every=100", "train.log_every=50"])
    run = tmp_path / "orig"
    result = train_with_repairs(spec, run, max_repairs=1, echo=lambda m: None)
    check_page(driver, run / REPORT, ["repairs", *RUN_SECTIONS], "run-repair")
    head = verdict(driver)
    first = {f["code"] for f in json.loads((run / REPAIRS).read_text())["attempts"][0]["findings"]}
    assert {"init-loss-high", "saturated-activations"} <= first
    assert head.startswith(f"{len(first)} findings") and "repaired: the best attempt is 1" in head
    assert result["best"] == 1
    from selenium.webdriver.common.by import By

    table = driver.find_element(By.ID, "repairs").text
    assert "model.init.output.scale 1 -> 0.01" in table and "kaiming" in table
    assert follow(driver, "repair-1", RUN_SECTIONS, "run-repair-1") == run / "repair-1" / REPORT
    assert "init-loss-high" not in driver.find_element(By.ID, "findings").text


def test_a_search_of_a_few_trials(driver, tmp_path):
    from selenium.webdriver.common.by import By

    raw = {"name": "tiny", "seed": 3, "data": {"kind": "names", "context": 3},
           "model": {"kind": "mlp", "embed_dim": 4, "hidden": [16], "batchnorm": True},
           "optim": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "step", "milestones": [200]},
           "train": {"steps": 400, "log_every": 20, "eval_every": 100}, "watch": {"enabled": True, "every": 50},
           "search": {"params": {"optim.lr": {"type": "log_uniform", "low": 1e-3, "high": 30.0},
                                 "optim.weight_decay": {"type": "log_uniform", "low": 1e-6, "high": 1e-1}},
                      "stages": [{"trials": 5, "steps": 40}, {"trials": 2, "steps": 100}]}}
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(raw))
    out = tmp_path / "search"
    result = run_search(load_spec(path), out, echo=lambda m: None)
    sizes = check_page(driver, out / REPORT, SEARCH_SECTIONS, "search")
    assert set(sizes) == {"fig-param-optim.lr", "fig-param-optim.weight_decay"}
    assert verdict(driver).startswith(f"best: trial {result.best.number} (stage 2)")
    # the table sorts on a click: by val loss, the finished trials ascending
    table = driver.find_element(By.ID, "trials-table")
    header = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    table.find_elements(By.TAG_NAME, "th")[header.index("val loss")].click()
    cells = [r.find_elements(By.TAG_NAME, "td")[header.index("val loss")].get_attribute("data-v")
             for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    losses = [float(c) for c in cells if c is not None]
    assert len(losses) == sum(r.state == "COMPLETE" for r in result.rows) and losses == sorted(losses)
    follow(driver, f"trial {result.best.number}", RUN_SECTIONS, "search-best-trial")


def test_a_seeds_ensemble(driver, tmp_path, digits_spec):
    from selenium.webdriver.common.by import By

    summary = train_members(digits_spec("seed=3", steps=100), tmp_path / "seeds", 2, progress=False)
    sizes = check_page(driver, tmp_path / "seeds" / REPORT, ENSEMBLE_SECTIONS, "ensemble")
    assert set(sizes) == {"fig-ensemble"}
    assert verdict(driver).startswith(f"ensemble of 2: val loss {summary['val_loss']:.4g}")
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#members-table tbody tr")]
    assert [r.split()[0] for r in rows[:3]] == ["member-0", "member-1", "ensemble"]
    assert rows[0].split()[1] == "3" and rows[1].split()[1] == "4"  # their seeds
    follow(driver, "report", RUN_SECTIONS, "ensemble-member-0")  # the first member's page, from the table
