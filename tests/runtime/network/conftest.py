"""Fixtures for networking tests: throwaway namespaces and bridges that cannot collide
with anything else on the host (``pydt-*`` names, 10.213.200-249.0/24 subnets)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from runtime.network import bridge


@pytest.fixture
def netns_pid() -> Iterator[int]:
    """PID of a sleeping process alone in a new network namespace (only ``lo``, down)."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    deadline = time.monotonic() + 5
    while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
        if time.monotonic() > deadline:
            raise RuntimeError("unshare did not create a namespace")
        time.sleep(0.005)
    yield proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def nsexec(pid: int, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def bridge_name() -> Iterator[str]:
    name = "pydt-" + secrets.token_hex(3)
    yield name
    bridge.delete_link(name)


_next_subnet = iter(range(200, 250))


@pytest.fixture
def subnet_octet() -> int:
    """A third octet for 10.213.X.0/24, different for every test of the session."""
    try:
        return next(_next_subnet)
    except StopIteration:  # pragma: no cover - more tests than subnets
        raise RuntimeError("out of test subnets") from None
