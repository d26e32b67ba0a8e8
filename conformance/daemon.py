"""Starts and stops a pydockerd subprocess for the conformance suite.

The daemon gets its own short directory under /tmp (unix socket paths are limited to ~108
bytes): ``d.sock``, ``data/``, ``exec/``, ``pydockerd.pid`` and ``daemon.log`` (its stdout and
stderr). Readiness is ``GET /_ping`` answering ``OK``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conformance.rawhttp import RawHTTP

DEFAULT_BRIDGE = "pydt0"
DEFAULT_BIP = "10.213.0.1/24"


def free_test_bridge() -> tuple[str, str]:
    """A bridge name and subnet (``pydt<N>``, ``10.213.<N>.1/24``) no interface on this host
    uses yet, so several suites (or developers) can run side by side."""
    import random
    import subprocess

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    # 10.213.1-199.x are spelled out by tests (static subnets); sessions take 200-249
    candidates = list(range(200, 250))
    random.shuffle(candidates)
    for n in candidates:
        if f" pydt{n}:" not in links and f" 10.213.{n}." not in addrs:
            return f"pydt{n}", f"10.213.{n}.1/24"
    return DEFAULT_BRIDGE, DEFAULT_BIP


class DaemonStartError(RuntimeError):
    """pydockerd did not become ready; the message carries its log tail."""


@dataclass
class DaemonSettings:
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "compat_api"])
    bridge: str = DEFAULT_BRIDGE
    bip: str = DEFAULT_BIP
    base_dir: str = "/tmp"
    extra_args: list[str] = field(default_factory=list)
    # Debug level so a failing test's report shows what the daemon did meanwhile.
    log_level: str = "debug"
    start_timeout: float = 30.0
    stop_timeout: float = 15.0
    keep_dirs: bool = False
    # extra environment of the daemon process (e.g. the test-only PYDOCKERD_FAULT_AT)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> DaemonSettings:
        """Settings overridable by CONFORMANCE_* variables (see README)."""
        settings = cls()
        settings.bridge, settings.bip = free_test_bridge()
        if cmd := os.environ.get("CONFORMANCE_PYDOCKERD"):
            settings.command = shlex.split(cmd)
        settings.bridge = os.environ.get("CONFORMANCE_BRIDGE", settings.bridge)
        settings.bip = os.environ.get("CONFORMANCE_BIP", settings.bip)
        settings.base_dir = os.environ.get("CONFORMANCE_TMPDIR", settings.base_dir)
        if extra := os.environ.get("CONFORMANCE_PYDOCKERD_ARGS"):
            settings.extra_args = shlex.split(extra)
        settings.log_level = os.environ.get("CONFORMANCE_LOG_LEVEL", settings.log_level)
        settings.keep_dirs = os.environ.get("CONFORMANCE_KEEP", "") not in ("", "0")
        if timeout := os.environ.get("CONFORMANCE_START_TIMEOUT"):
            settings.start_timeout = float(timeout)
        return settings


class PydockerdProcess:
    """One pydockerd subprocess with a private socket, data root and exec root."""

    def __init__(self, settings: DaemonSettings, cwd: Path | None = None) -> None:
        self.settings = settings
        self.workdir = Path(tempfile.mkdtemp(prefix="pydc-", dir=settings.base_dir))
        self.socket_path = self.workdir / "d.sock"
        self.data_root = self.workdir / "data"
        self.exec_root = self.workdir / "exec"
        self.pidfile = self.workdir / "pydockerd.pid"
        self.log_path = self.workdir / "daemon.log"
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def argv(self) -> list[str]:
        s = self.settings
        return [
            *s.command,
            "-H", self.host,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "--bridge", s.bridge,
            "--bip", s.bip,
            "--log-level", s.log_level,
            *s.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        if len(str(self.socket_path)) > 100:
            raise DaemonStartError(f"socket path too long for AF_UNIX: {self.socket_path}")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
                env={**os.environ, **self.settings.env} if self.settings.env else None,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.settings.start_timeout
        last_error = "socket not created"
        raw = RawHTTP(self.host, timeout=2.0)
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise DaemonStartError(
                    f"pydockerd exited with code {code} before answering /_ping\n"
                    f"command: {' '.join(self.argv())}\n{self.log_tail()}"
                )
            if self.socket_path.exists():
                try:
                    resp = raw.get("/_ping")
                    if resp.status == 200 and resp.body == b"OK":
                        return
                    last_error = f"/_ping answered {resp.status} {resp.body[:200]!r}"
                except OSError as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        self.stop()
        raise DaemonStartError(
            f"pydockerd not ready after {self.settings.start_timeout}s ({last_error})\n"
            f"command: {' '.join(self.argv())}\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60, since: int = 0) -> str:
        text = self.log_text(since).splitlines()[-lines:]
        return f"--- pydockerd log ({self.log_path}), last {len(text)} lines ---\n" + "\n".join(text)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the stop timeout; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.settings.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def remove_dirs(self) -> None:
        """Remove what the session left: a supervisor still holding processes (after a
        test killed the daemon), the test bridge, and the directories."""
        pid_file = self.exec_root / "supervisor" / "supervisor.pid"
        try:
            supervisor = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            supervisor = 0
        if supervisor and Path(f"/proc/{supervisor}").exists():
            # its children are container inits: killing them ends their pid namespaces
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    ppid = next(line for line in status.read_text().splitlines() if line.startswith("PPid:"))
                    if int(ppid.split()[1]) == supervisor:
                        os.kill(int(status.parent.name), signal.SIGKILL)
                except (OSError, StopIteration, ValueError):
                    pass
            try:
                os.kill(supervisor, signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["ip", "link", "del", self.settings.bridge], capture_output=True)
        if not self.settings.keep_dirs:
            shutil.rmtree(self.workdir, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def own_pydockerd(bridge_prefix: str, octet: int, *, start: bool = True,
                  **overrides: object) -> Iterator[PydockerdProcess]:
    """A pydockerd of a test's own (to stop, crash or restart), on bridge
    ``<prefix><random>`` and 10.213.<octet>.1/24; stopped and cleaned up afterwards, its
    default bridge included. ``overrides`` set DaemonSettings fields."""
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = bridge_prefix + os.urandom(2).hex(), f"10.213.{octet}.1/24"
    for name, value in overrides.items():
        setattr(settings, name, value)
    daemon = PydockerdProcess(settings)
    try:
        if start:
            daemon.start()
        yield daemon
    finally:
        daemon.stop()
        daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)
