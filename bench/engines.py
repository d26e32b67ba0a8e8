"""The engines a benchmark runs against: a pydockerd it starts (or one given), and a reference.

The reference is never started here: one dockerd per host (it owns docker0 and its iptables
chains), so it is given by its socket (``--against unix:///path/dockerd.sock``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conformance.daemon import DaemonSettings, PydockerdProcess
from conformance.rawhttp import RawHTTP


@dataclass(frozen=True)
class Engine:
    name: str
    host: str
    pids: tuple[int, ...] = field(default=())   # the engine's own processes, when known

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(self, *args: str, input: bytes | None = None, check: bool = True,
               timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(["docker", *args], env=self.env(), input=input,
                              capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: docker {' '.join(args[:4])}... failed: "
                               f"{proc.stderr.decode(errors='replace').strip()}")
        return proc

    def quiet(self, *args: str, timeout: float = 900) -> None:
        """``docker *args`` with its output discarded (to /dev/null, as one measures a CLI:
        a pipe read by Python would time the reader too)."""
        subprocess.run(["docker", *args], env=self.env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=True)

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["docker", *args], env=self.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def socket_path(self) -> str:
        return self.host.removeprefix("unix://")


def wait_ping(host: str, timeout: float = 60) -> None:
    raw = RawHTTP(host, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if raw.get("/_ping").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{host} did not answer /_ping")


def reference(host: str) -> Engine:
    """An already running dockerd; its processes (dockerd, containerd) found by name."""
    wait_ping(host)
    pids = []
    for name in ("dockerd", "containerd"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    return Engine("dockerd", host, tuple(pids))


def _supervisor_pids(exec_root: Path) -> tuple[int, ...]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"runtime.process.supervisor" in cmdline and str(exec_root).encode() in cmdline:
            found.append(int(proc.name))
    return tuple(found)


@dataclass
class Pydockerd:
    """The pydockerd under test; ``engine()`` is refreshed so it names the supervisor too
    (started with the first container)."""

    host: str
    daemon_pid: int | None = None
    exec_root: Path | None = None

    def engine(self) -> Engine:
        pids: tuple[int, ...] = ()
        if self.daemon_pid is not None and self.exec_root is not None:
            pids = (self.daemon_pid, *_supervisor_pids(self.exec_root))
        return Engine("pydockerd", self.host, pids)


@contextmanager
def pydockerd(host: str | None = None) -> Iterator[Pydockerd]:
    """The given pydockerd, or a fresh one on a free test bridge (info-level log)."""
    if host:
        wait_ping(host)
        yield Pydockerd(host)
        return
    settings = DaemonSettings.from_env()
    settings.log_level = os.environ.get("BENCH_LOG_LEVEL", "info")
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        assert daemon.proc is not None
        yield Pydockerd(daemon.host, daemon.proc.pid, daemon.exec_root)
    finally:
        daemon.stop()
        daemon.remove_dirs()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def rss_kib(pids: tuple[int, ...]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pss_kib(pids: tuple[int, ...]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total
