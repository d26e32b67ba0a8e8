"""Headless Debian chromium driven by selenium, and a pydockerd-dashboard subprocess.

The browser is the distribution's (``/usr/bin/chromium`` with ``/usr/bin/chromedriver``, both
from apt): selenium is given both paths, so it never downloads a browser or a driver. Each
browser gets a new empty profile. Screenshots go to ``$CONFORMANCE_ARTIFACTS`` (or a pytest
temporary directory), never into the repository.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CONFORMANCE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONFORMANCE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1440,900", "--force-color-profile=srgb",
)
REPO_ROOT = Path(__file__).resolve().parent.parent


class DashboardProcess:
    """``python -m dashboard`` for one engine on an ephemeral loopback port."""

    def __init__(self, engine_host: str, workdir: Path) -> None:
        self.engine_host = engine_host
        self.workdir = workdir
        self.log_path = workdir / "dashboard.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def base(self) -> str:
        return self.url.split("#", 1)[0].rstrip("/")

    @property
    def token(self) -> str:
        return self.url.split("#token=", 1)[1]

    def start(self, timeout: float = 30.0) -> DashboardProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "-H", self.engine_host, "--listen", "127.0.0.1:0",
                 "--token-dir", str(self.workdir / "token")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"open (https?://\S+#token=\S+)", self.log_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pydockerd-dashboard did not start:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def new_browser() -> Any:
    """A selenium WebDriver on Debian's chromium; skips when it is not installed."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium; scripts/install-deps.sh does it)")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='pydd-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the page is still changing under us
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("CONFORMANCE_ARTIFACTS")
    if env:
        path = Path(env) / "dashboard"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("dashboard-screenshots")


def dashboard_fixture(engine_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    proc = DashboardProcess(engine_host, tmp_path_factory.mktemp("dashboard"))
    try:
        proc.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield proc
    finally:
        proc.stop()
