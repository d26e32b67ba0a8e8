"""Fixtures for networking tests: throwaway namespaces and bridges that cannot collide
with anything else on the host (``pydt-*`` names, 10.213.200-249.0/24 subnets)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from runtime.network import bridge


class NetnsFactory:
    """Spawns sleeping processes, each alone in a new network namespace (only ``lo``)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self) -> int:
        proc = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        self.procs.append(proc)
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not create a namespace")
            time.sleep(0.005)
        return proc.pid

    def kill(self, pid: int) -> None:
        for proc in self.procs:
            if proc.pid == pid and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc.pid)


@pytest.fixture
def netns_factory() -> Iterator[NetnsFactory]:
    factory = NetnsFactory()
    yield factory
    factory.close()


@pytest.fixture
def netns_pid(netns_factory: NetnsFactory) -> int:
    """PID of a sleeping process alone in a new network namespace (only ``lo``, down)."""
    return netns_factory()


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


@pytest.fixture
async def service(tmp_path, bridge_name: str, subnet_octet: int):  # type: ignore[no-untyped-def]
    """A NetworkService on a private data root, default bridge ``pydt-*`` on
    10.213.X.1/24; closed and its bridges deleted afterwards."""
    from runtime.config import DaemonConfig
    from runtime.events import EventBus
    from runtime.network.service import NetworkService

    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec", bridge=bridge_name,
                          bip=f"10.213.{subnet_octet}.1/24")
    svc = await NetworkService.open(config, EventBus())
    yield svc
    bridges = [n.bridge for n in svc.context.networks.values() if n.is_bridge]
    for cid in list(svc.context.sandboxes):
        await svc.detach_container(cid)
    await svc.close()
    for name in bridges:
        await asyncio.to_thread(bridge.delete_link, name)


def container_request(cid: str, name: str, tmp_path, **kw):  # type: ignore[no-untyped-def]
    from runtime.network.contract import SandboxRequest

    d = tmp_path / cid[:12]
    d.mkdir(exist_ok=True)
    (d / "hosts").write_text("")
    (d / "resolv.conf").write_text("")
    kw.setdefault("hostname", cid[:12])
    return SandboxRequest(container_id=cid, name=name, hosts_path=str(d / "hosts"),
                          resolv_conf_path=str(d / "resolv.conf"), **kw)
