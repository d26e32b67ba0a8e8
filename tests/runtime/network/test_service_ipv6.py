"""IPv6 networks in the network service: pools, container addresses, AAAA, and the error
on a host without IPv6."""

from __future__ import annotations

import ipaddress
import re
import secrets
import subprocess
from pathlib import Path

import dns.message
import dns.query
import pytest

from runtime.errors import InvalidParameter
from runtime.network import networks as networks_module
from runtime.network.ipam import PoolConfig
from runtime.network.ipam6 import ERR_NO_IPV6
from runtime.network.netns import run_in_netns
from runtime.network.service import NetworkCreate, NetworkService
from tests.runtime.network.conftest import NetnsFactory, container_request, nsexec


def _subnet() -> str:
    return str(ipaddress.IPv6Network(f"fd42:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64"))


async def test_ipv6_network_addresses_and_aaaa(service: NetworkService, netns_factory: NetnsFactory,
                                               tmp_path: Path) -> None:
    subnet = _subnet()
    prefix = subnet.split("::")[0]
    net_id = await service.create(NetworkCreate(name="pydt-v6", enable_ipv6=True,
                                                ipam_config=(PoolConfig(subnet=subnet),)))
    net = service.view(net_id).network
    assert net.enable_ipv6 and net.subnet6 == subnet and net.gateway6 == f"{prefix}::1"
    shown = subprocess.run(["ip", "-6", "addr", "show", net.bridge], capture_output=True, text=True).stdout
    assert f"{prefix}::1/64" in shown
    c1, c2 = secrets.token_hex(32), secrets.token_hex(32)
    p1, p2 = netns_factory(), netns_factory()
    s1 = await service.attach_container(container_request(c1, "web", tmp_path, network_mode="pydt-v6"), p1)
    fixed = container_request(c2, "client", tmp_path, network_mode="pydt-v6")
    from dataclasses import replace

    from runtime.network.contract import EndpointConfig

    fixed = replace(fixed, endpoints={"pydt-v6": EndpointConfig(ipv6_address=f"{prefix}::f00d")})
    s2 = await service.attach_container(fixed, p2)
    ep1, ep2 = s1["Networks"]["pydt-v6"], s2["Networks"]["pydt-v6"]
    assert ep1["GlobalIPv6Address"] == f"{prefix}::2" and ep1["GlobalIPv6PrefixLen"] == 64
    assert ep1["IPv6Gateway"] == f"{prefix}::1"
    assert ep2["GlobalIPv6Address"] == f"{prefix}::f00d"
    assert f"{prefix}::f00d/64" in nsexec(p2, "ip", "-6", "addr", "show", "eth0").stdout
    assert nsexec(p2, "busybox", "ping", "-6", "-c", "1", "-W", "3", f"{prefix}::2").returncode == 0
    query = dns.message.make_query("web", "AAAA")
    resp = await run_in_netns(f"/proc/{p2}/ns/net", lambda: dns.query.udp(query, "127.0.0.11", timeout=3))
    assert [r.to_text() for r in resp.answer[0]] == [f"{prefix}::2"]
    assert service.view(net_id).containers[0].ipv6 in (f"{prefix}::2/64", f"{prefix}::f00d/64")
    await service.detach_container(c1)
    await service.detach_container(c2)


async def test_ipv6_refused_on_a_host_without_it(service: NetworkService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(networks_module, "host_has_ipv6", lambda: False)
    with pytest.raises(InvalidParameter, match=f"^{re.escape(ERR_NO_IPV6)}$"):
        await service.create(NetworkCreate(name="pydt-nov6", enable_ipv6=True,
                                           ipam_config=(PoolConfig(subnet=_subnet()),)))


async def test_taken_static_ipv6_fails_the_attach_and_frees_the_ipv4(
    service: NetworkService, netns_factory: NetnsFactory, tmp_path: Path
) -> None:
    from dataclasses import replace

    from runtime.network.contract import EndpointConfig

    subnet = _subnet()
    prefix = subnet.split("::")[0]
    net_id = await service.create(NetworkCreate(name="pydt-v6b", enable_ipv6=True,
                                                ipam_config=(PoolConfig(subnet=subnet),)))
    fixed = {"pydt-v6b": EndpointConfig(ipv6_address=f"{prefix}::f00d")}
    c1, c2 = secrets.token_hex(32), secrets.token_hex(32)
    r1 = replace(container_request(c1, "a", tmp_path, network_mode="pydt-v6b"), endpoints=fixed)
    r2 = replace(container_request(c2, "b", tmp_path, network_mode="pydt-v6b"), endpoints=fixed)
    await service.attach_container(r1, netns_factory())
    before = set(service.context.ipam.allocated(net_id))
    with pytest.raises(Exception, match="[Aa]ddress already in use|in use"):
        await service.attach_container(r2, netns_factory())
    assert set(service.context.ipam.allocated(net_id)) == before
    await service.detach_container(c1)
