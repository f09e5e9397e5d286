"""Headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) for the report
tests, with the network closed: the page must stand on its own. `.ci/run` installs the packages;
without them the browser tests are skipped, unless BABYSIT_REQUIRE_BROWSER is set (CI sets it)."""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# --headless --no-sandbox (root in a container) and no calls home: without the background and
# component flags Chromium tries to reach Google's hosts for updates, components and field trials.
# The host-resolver rule closes the network: every host name fails to resolve, so a page that
# fetched anything (a CDN script, a remote image) would log a console error the tests refuse.
WIDTH, HEIGHT = 1280, 1000  # a laptop's window: what a reader sees first
FLAGS = [f"--window-size={WIDTH},{HEIGHT}", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def browser_available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


def need_browser():
    """Skip (or, under CI, fail) when Chromium, its driver or Selenium is missing."""
    if browser_available():
        return
    why = (f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}) and selenium "
           "(pip install -e '.[dev]'); .ci/run installs them")
    if os.environ.get("BABYSIT_REQUIRE_BROWSER"):
        pytest.fail(why)
    pytest.skip(why)


@contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="babysit-chromium-")
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_report(driver, path: Path) -> list[dict]:
    """Load the page; returns the console messages of level SEVERE (errors) it logged."""
    driver.get(Path(path).resolve().as_uri())
    driver.execute_script("return document.readyState")
    return [m for m in driver.get_log("browser") if m["level"] == "SEVERE"]


def colours(png: bytes) -> int:
    """How many distinct colours a screenshot holds (1: blank)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        found = im.convert("RGB").getcolors(maxcolors=1 << 16)
    return len(found) if found is not None else 1 << 16


def keep_screenshot(png: bytes, name: str) -> None:
    """Under BABYSIT_SCREENSHOTS=DIR, the test's screenshot is kept as DIR/NAME.png (for a person to
    look at)."""
    folder = os.environ.get("BABYSIT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.png").write_bytes(png)


# A figure smaller than this (CSS pixels) is not one a reader can read; a rendered figure has axes,
# lines and text in several colours, a blank one (an empty SVG, a figure that failed) one or two.
MIN_FIGURE_PX = (200, 100)
MIN_COLOURS = 8


def check_page(driver, path: Path, sections: list[str], name: str) -> dict:
    """The issue's checks on one report: it loads with no console error (the network closed), every
    section is in the DOM, every figure has a readable rendered size and is not blank (cut out of
    one screenshot of the whole page), and the screenshot of the page's top is not a single colour.
    Returns {figure id: (width, height)}."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver.set_window_size(WIDTH, HEIGHT)
    errors = open_report(driver, path)
    assert errors == [], errors
    for section in sections:
        assert driver.find_elements(By.ID, section), f"section #{section} missing from {path}"
    top = driver.get_screenshot_as_png()
    assert colours(top) >= MIN_COLOURS, f"the top of {path} renders blank"
    keep_screenshot(top, name)
    boxes = driver.execute_script(
        "return Array.from(document.querySelectorAll('figure')).map(function (f) {"
        " var r = f.querySelector('svg').getBoundingClientRect();"
        " return [f.id, r.left + scrollX, r.top + scrollY, r.width, r.height]; })")
    if not boxes:
        return {}
    # the window as tall as the page (its chrome takes some of the height: measured, not assumed)
    inner = driver.execute_script("return window.innerHeight")
    page = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, HEIGHT - inner + page)
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as full:
        sizes = {}
        for fid, x, y, w, h in boxes:
            sizes[fid] = (w, h)
            assert w >= MIN_FIGURE_PX[0] and h >= MIN_FIGURE_PX[1], (fid, w, h)
            assert y + h <= full.height, f"{fid} lies below the screenshot ({y + h} > {full.height})"
            found = full.crop((int(x), int(y), int(x + w), int(y + h))).convert("RGB").getcolors(1 << 16)
            assert found is None or len(found) >= MIN_COLOURS, f"{fid} renders blank"
    return sizes
