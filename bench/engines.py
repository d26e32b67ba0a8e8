"""Start a reference dockerd and pydockerd side by side for benchmarks.

The reference is Debian's dockerd on its own socket, data root and exec root (it takes
docker0 / 172.17.0.0/16); pydockerd runs beside it on another bridge and subnet. Set
``BENCH_REFERENCE_HOST`` to use an already running reference instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conformance.daemon import DaemonSettings, PydockerdProcess
from conformance.rawhttp import RawHTTP

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


@dataclass(frozen=True)
class Engine:
    name: str
    host: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", *args], env=self.env(), input=input,
                              capture_output=True, check=check, timeout=600)


def _wait_ping(host: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    raw = RawHTTP(host, timeout=2.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"engine exited with {proc.returncode}")
        try:
            if raw.get("/_ping").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{host} did not answer /_ping")


@contextmanager
def reference_dockerd() -> Iterator[Engine]:
    if host := os.environ.get("BENCH_REFERENCE_HOST"):
        yield Engine("dockerd", host)
        return
    if subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
        # a second dockerd would fight the first over docker0 and its iptables chains
        raise RuntimeError("a dockerd is already running: point BENCH_REFERENCE_HOST at its socket")
    work = Path(tempfile.mkdtemp(prefix="bref-", dir="/tmp"))
    sock = work / "ref.sock"
    log = open(work / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [DOCKERD, "-H", f"unix://{sock}", "--data-root", "/var/lib/pydockerd-bench-ref",
         "--exec-root", str(work / "exec"), "--pidfile", str(work / "dockerd.pid")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_ping(f"unix://{sock}", proc)
        yield Engine("dockerd", f"unix://{sock}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def pydockerd() -> Iterator[Engine]:
    if host := os.environ.get("BENCH_PYDOCKERD_HOST"):
        yield Engine("pydockerd", host)
        return
    daemon = PydockerdProcess(DaemonSettings.from_env())
    daemon.start()
    try:
        yield Engine("pydockerd", daemon.host)
    finally:
        daemon.stop()
        daemon.remove_dirs()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
