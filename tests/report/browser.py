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
    section is in the DOM, every figure has a readable rendered size and is not blank, and the
    screenshot of the page's top is not a single colour. Returns {figure id: (width, height)}."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(WIDTH, HEIGHT)
    errors = open_report(driver, path)
    assert errors == [], errors
    for section in sections:
        assert driver.find_elements(By.ID, section), f"section #{section} missing from {path}"
    sizes = {}
    for fig in driver.find_elements(By.CSS_SELECTOR, "figure"):
        box = fig.find_element(By.TAG_NAME, "svg").rect
        sizes[fig.get_attribute("id")] = (box["width"], box["height"])
        assert box["width"] >= MIN_FIGURE_PX[0] and box["height"] >= MIN_FIGURE_PX[1], (fig.get_attribute("id"), box)
        driver.execute_script("arguments[0].scrollIntoView()", fig)
        assert colours(fig.screenshot_as_png) >= MIN_COLOURS, f"{fig.get_attribute('id')} renders blank"
    driver.execute_script("window.scrollTo(0, 0)")
    png = driver.get_screenshot_as_png()
    assert colours(png) >= MIN_COLOURS
    keep_screenshot(png, name)
    return sizes
