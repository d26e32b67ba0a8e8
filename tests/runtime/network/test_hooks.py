"""Real busybox containers (supervisor runtime, container service) networked through
ContainerNetworkSteps (run by the container service): addresses, ping by IP and by name, published ports, cleanup on exit."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runtime.containers.attach import AttachOptions
from runtime.containers.model import ContainerConfig, HostConfig, PortBinding
from runtime.containers.service import ContainerService, CreateRequest
from runtime.containers.state import WaitCondition
from runtime.events import EventBus
from runtime.linux.cgroups import CgroupManager
from runtime.network import bridge
from runtime.network.contract import EndpointConfig
from runtime.network.hooks import ContainerDirectoryAdapter, ContainerNetworkSteps, sandbox_request_for
from runtime.network.service import NetworkCreate, NetworkService
from runtime.process.client import SupervisorClient
from tests.runtime.containers.fakes import FakeImages
from tests.runtime.network.test_service import wait_gone
from tests.runtime.containers.test_real_runtime import DirLayers, exec_root, rootfs  # noqa: F401

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                       reason="needs root and /bin/busybox"),
    pytest.mark.timeout(90),
]

ENDPOINTS: dict[str, dict[str, EndpointConfig]] = {}


@pytest.fixture
async def stack(tmp_path: Path, rootfs: Path, exec_root: Path,  # noqa: F811
                service: NetworkService) -> AsyncIterator[ContainerService]:
    client = await SupervisorClient.connect(exec_root)
    cgroups = CgroupManager(parent=f"pydockerd-test-{uuid.uuid4().hex[:8]}")
    svc = ContainerService(tmp_path / "cdata", EventBus(), FakeImages(),
                           DirLayers(tmp_path / "layers", rootfs), client, cgroups)
    svc.set_network_steps(ContainerNetworkSteps(
        service, lambda cid: sandbox_request_for(svc.get(cid), svc.get, ENDPOINTS.get(cid))))
    await svc.load()
    service.set_container_directory(ContainerDirectoryAdapter(svc))
    yield svc
    for c in list(svc.store):
        await svc.remove(c.id, force=True)
    await client.close()
    mounts = [str(cgroups.root)] if str(cgroups.version) == "2" else list(cgroups.hierarchies.values())
    for mountpoint in mounts:
        try:
            os.rmdir(Path(mountpoint) / cgroups.parent)
        except OSError:
            pass


async def create(svc: ContainerService, cmd: tuple[str, ...], host: HostConfig | None, name: str = "",
                 endpoints: dict[str, EndpointConfig] | None = None, **config: Any) -> str:
    host = host or HostConfig()
    # the container service still refuses user-defined network modes at create (until it
    # calls validate_sandbox); set the mode on the record afterwards
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=cmd, **config),
                                            replace(host, network_mode=""), name=name))
    container = svc.get(result.id)
    container.host_config = host
    if endpoints:
        ENDPOINTS[result.id] = endpoints
    return result.id


async def run(svc: ContainerService, *cmd: str, host: HostConfig | None = None,
              endpoints: dict[str, EndpointConfig] | None = None, **config: Any) -> tuple[int, str]:
    cid = await create(svc, cmd, host, endpoints=endpoints, **config)
    att = svc.attach(cid, AttachOptions(stream=True, stdout=True, stderr=True))
    waiter = svc.wait(cid, WaitCondition.NEXT_EXIT)
    await svc.start(cid)
    out = b""
    async for _stream, data in att.output():
        out += data
    status = await asyncio.wait_for(waiter, 30)
    return status.exit_code, out.decode()


async def start_detached(svc: ContainerService, *cmd: str, name: str = "", host: HostConfig | None = None,
                         endpoints: dict[str, EndpointConfig] | None = None, **config: Any) -> str:
    cid = await create(svc, cmd, host, name=name, endpoints=endpoints, **config)
    await svc.start(cid)
    return cid


async def test_default_bridge_address_and_ping(stack: ContainerService, service: NetworkService) -> None:
    subnet = service.default_bridge.subnet.rsplit(".", 1)[0]
    code, out = await run(stack, "sh", "-c", "ip -4 addr show eth0; cat /etc/resolv.conf; cat /etc/hosts")
    assert code == 0, out
    assert f"inet {subnet}." in out and "(legacy)" in out
    peer = await start_detached(stack, "sleep", "60")
    peer_ip = service.settings(peer)["IPAddress"]  # type: ignore[index]
    code, out = await run(stack, "ping", "-c", "1", "-W", "2", peer_ip)
    assert code == 0, out
    veth = next(iter(service.context.sandboxes[peer].endpoints.values())).host_veth
    await stack.kill(peer, "KILL")
    # the kill returns once the exit transition, networking included, is complete
    assert service.settings(peer) is None and stack.get(peer).state.exit_code == 137
    await wait_gone(veth)


async def test_user_network_names_and_aliases(stack: ContainerService, service: NetworkService) -> None:
    await service.create(NetworkCreate(name="pydt-e2e"))
    server = await start_detached(stack, "sleep", "60", name="srv", host=HostConfig(network_mode="pydt-e2e"),
                                  endpoints={"pydt-e2e": EndpointConfig(aliases=("db",))})
    for target in ("srv", "db", "srv.pydt-e2e"):
        code, out = await run(stack, "ping", "-c", "1", "-W", "2", target, host=HostConfig(network_mode="pydt-e2e"))
        assert code == 0, (target, out)
    code, out = await run(stack, "cat", "/etc/resolv.conf", host=HostConfig(network_mode="pydt-e2e"))
    assert "nameserver 127.0.0.11\noptions ndots:0" in out
    # a container on the default bridge can neither resolve nor reach it
    ip = service.settings(server)["Networks"]["pydt-e2e"]["IPAddress"]  # type: ignore[index]
    code, _ = await run(stack, "ping", "-c", "1", "-W", "1", ip)
    assert code != 0


async def test_published_port_and_none_mode(stack: ContainerService, service: NetworkService) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cid = await start_detached(
        stack, "sh", "-c", "echo hello > /tmp/index.html; httpd -f -p 8000 -h /tmp",
        host=HostConfig(port_bindings={"8000/tcp": (PortBinding("127.0.0.1", str(port)),)}),
        exposed_ports=("8000/tcp",),
    )
    assert service.settings(cid)["Ports"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}  # type: ignore[index]
    body = b""
    for _ in range(50):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if b"hello" in body:
                break
        except OSError:
            pass
        await asyncio.sleep(0.1)
    assert b"200 OK" in body and body.endswith(b"hello\n")
    code, out = await run(stack, "ip", "-o", "link", host=HostConfig(network_mode="none"))
    assert code == 0 and len(out.splitlines()) == 1 and ": lo:" in out


async def test_init_failures_after_the_pause_are_not_networking_errors(
    stack: ContainerService, service: NetworkService
) -> None:
    from runtime.process.contract import StartFailed

    cid = await create(stack, ("/no/such",), None)
    with pytest.raises(StartFailed) as err:
        await stack.start(cid)
    assert str(err.value).startswith("failed to create task for container")
    assert "no such file or directory" in str(err.value)
    assert service.settings(cid) is None  # nothing stays attached


async def test_networking_failure_is_reported_as_such(stack: ContainerService, service: NetworkService) -> None:
    from runtime.process.contract import StartFailed

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cid = await create(stack, ("sleep", "30"), HostConfig(port_bindings={"80/tcp": (PortBinding("127.0.0.1", str(port)),)}),
                           exposed_ports=("80/tcp",))
        with pytest.raises(StartFailed) as err:
            await stack.start(cid)
        text = str(err.value)
        assert text.startswith("failed to set up container networking: driver failed programming external "
                               "connectivity on endpoint ")
        assert f"failed to bind host port for 127.0.0.1:{port}:" in text
        assert text.endswith(":80/tcp: address already in use")
        assert service.settings(cid) is None and not stack.get(cid).state.running
    finally:
        taken.close()
