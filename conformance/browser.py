"""Headless Debian chromium driven by selenium, and a pydockerd-dashboard subprocess.

The browser is the distribution's (``/usr/bin/chromium`` with ``/usr/bin/chromedriver``, both
from apt), never a download. Each browser gets a new empty profile. Screenshots go to
``$CONFORMANCE_ARTIFACTS`` (or a pytest temporary directory), never into the repository.

chromedriver, chromium and the dashboard run in a private network namespace with only ``lo``
(``conformance/netns_stack.py``): Chrome cuts requests in flight whenever an interface of its
host appears, which every container start does. Selenium reaches chromedriver through a unix
socket, forwarded here to a loopback port.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.netns_stack import pump

CHROMIUM = os.environ.get("CONFORMANCE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONFORMANCE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1440,900", "--force-color-profile=srgb",
)
REPO_ROOT = Path(__file__).resolve().parent.parent


def _require_browser() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium; scripts/install-deps.sh does it)")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} missing: apt-get install chromium chromium-driver")


def _options() -> Any:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='pydd-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def new_browser() -> Any:
    """A selenium WebDriver on Debian's chromium in this network namespace (for looking at a
    dashboard by hand); skips when it is not installed."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=_options())


class _Forwarder:
    """127.0.0.1:<ephemeral> -> a unix socket, in a thread of its own."""

    def __init__(self, unix_path: Path) -> None:
        self.unix_path = unix_path
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("forwarder did not start")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.unix_path))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class IsolatedStack:
    """The dashboard and chromedriver (hence chromium) in a private network namespace."""

    def __init__(self, engine_host: str, workdir: Path) -> None:
        self.engine_host = engine_host
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.forwarder: _Forwarder | None = None
        self.url = ""

    @property
    def token(self) -> str:
        return self.url.split("#token=", 1)[1]

    def start(self) -> IsolatedStack:
        self.proc = subprocess.Popen(
            ["unshare", "--net", sys.executable, "-m", "conformance.netns_stack", self.engine_host,
             str(self.workdir), CHROMEDRIVER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO_ROOT, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            rest = line + (self.proc.stdout.read() if self.proc.poll() is not None else "")
            self.stop()
            raise RuntimeError(f"the browser stack did not start: {rest}\n{self.log_text()}")
        self.url = line.split(" ", 1)[1].strip()
        self.forwarder = _Forwarder(self.workdir / "driver.sock")
        return self

    def browser(self) -> Any:
        from selenium import webdriver

        from selenium.webdriver.remote.file_detector import UselessFileDetector

        assert self.forwarder is not None
        driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{self.forwarder.port}", options=_options())
        driver.file_detector = UselessFileDetector()  # same filesystem: upload by path, no Grid upload
        return driver

    def stop(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return (self.workdir / "dashboard.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


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


def stack_fixture(engine_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedStack]:
    _require_browser()
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    # short: the unix socket path must fit in 108 bytes
    stack = IsolatedStack(engine_host, Path(tempfile.mkdtemp(prefix="pydd-", dir="/tmp")))
    try:
        stack.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.workdir, ignore_errors=True)
