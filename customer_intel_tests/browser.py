"""Debian's chromium, headless and offline, driven by selenium through chromium-driver: what every browser test shares."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


# Headless as root, and offline: no background requests of the browser's own (updates, sync, safe browsing,
# metrics), and every host name but the loopback resolves to nothing, so the page can reach only the UI under test.
BROWSER_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--metrics-recording-only", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def browser_or_skip():
    """The selenium module, or a skip naming what is missing (a failure under CI=true: the browser must be there)."""
    missing = [f"{path} (apt-get install -y chromium chromium-driver; .ci/test installs them)" for path in (CHROMIUM, CHROMEDRIVER)
               if not path.exists()]
    try:
        import selenium
    except ImportError:
        selenium = None
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        reason = "no headless browser: missing " + "; ".join(missing)
        if os.environ.get("CI"):  # like the Postgres tests: under CI a missing browser is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    return selenium


def stop_group(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM to the process group ``process`` leads, SIGKILL to whatever of it is left after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    try:
        os.killpg(process.pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            process.poll()  # reap the leader once it exits
            os.killpg(process.pid, 0)  # raises once no process of the group is left (code server, daemon, webserver)
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@contextlib.contextmanager
def headless_chromium(window: str = "1600,1000"):
    """A selenium driver of Debian's chromium (headless, offline) through chromium-driver, named by path (Selenium Manager,
    which would download a driver, is never asked); afterwards the browser quits and the driver's process group is stopped."""
    browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*BROWSER_FLAGS, f"--window-size={window}"):
        options.add_argument(argument)
    service = Service(executable_path=str(CHROMEDRIVER), popen_kw={"start_new_session": True})
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        yield driver
    finally:
        try:
            if driver is not None:
                driver.quit()
        finally:
            if getattr(service, "process", None) is not None:
                stop_group(service.process, grace=5)
