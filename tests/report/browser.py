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
# --headless --no-sandbox (root in a container) and no calls home: without the last four flags
# Chromium tries to reach Google's hosts for updates, components and field trials.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1000"]


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


def screenshot(path: Path, out: Path, height: int = 1000) -> None:
    """A PNG of the page's top (what a reader sees first), for people and docs."""
    with chromium() as driver:
        driver.set_window_size(1280, height)
        open_report(driver, path)
        Path(out).write_bytes(driver.get_screenshot_as_png())
