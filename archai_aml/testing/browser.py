"""A headless Chromium for the dashboard's browser tests and benchmark: Debian's ``chromium`` driven by its
``chromium-driver`` through Selenium, with a new empty profile and no network of its own.

:func:`find_chromium` says where the browser and its driver are (``CHROMIUM_BIN`` / ``CHROMEDRIVER_BIN`` when
set, and then only there; else ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, else ``PATH``), or why
none was found;
:func:`headless_chromium` starts one (a context manager that quits it and deletes its profile).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "find_chromium", "headless_chromium"]

#: Headless, no sandbox (containers, root in CI), no GPU, and none of the browser's own network traffic
#: (QUIC, first-run pages, component updates, sync).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _which(env: str, default: str, names: tuple[str, ...]) -> Path | None:
    """The executable named by ``env`` when it is set (and only it), else ``default``, else one on PATH."""
    chosen = os.environ.get(env)
    candidates = (chosen,) if chosen else (default, *(shutil.which(n) for n in names))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def find_chromium() -> tuple[Path, Path] | str:
    """(browser, driver), or a sentence saying what is missing and how to install it."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'archai-aml[dev]')"
    browser = _which("CHROMIUM_BIN", "/usr/bin/chromium", ("chromium", "chromium-browser"))
    driver = _which("CHROMEDRIVER_BIN", "/usr/bin/chromedriver", ("chromedriver",))
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
        return f"no {missing} found (Debian: apt-get install chromium chromium-driver)"
    return browser, driver


@contextmanager
def headless_chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A Selenium ``webdriver.Chrome`` on a headless Chromium with a new, empty profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if isinstance(found, str):
        raise RuntimeError(found)
    browser, driver_path = found
    profile = tempfile.mkdtemp(prefix="archai-aml-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
