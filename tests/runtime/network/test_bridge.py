from __future__ import annotations

import asyncio
import os

import pytest

from runtime.network import bridge
from runtime.network.netns import run_in_netns
from tests.runtime.network.conftest import nsexec


def test_mac_and_veth_names() -> None:
    assert bridge.mac_for_ipv4("172.17.0.2") == "02:42:ac:11:00:02"
    name = bridge.random_veth_name()
    assert name.startswith("veth") and len(name) == 11
    int(name[4:], 16)


def test_ensure_bridge_creates_and_adopts(bridge_name: str, subnet_octet: int) -> None:
    cidr = f"10.213.{subnet_octet}.1/24"
    assert bridge.ensure_bridge(bridge_name, cidr) is True
    state = bridge.bridge_state(bridge_name)
    assert state is not None and state.up
    assert state.addresses == (cidr,)
    # idempotent: a second call adopts the bridge without duplicating the address
    assert bridge.ensure_bridge(bridge_name, cidr) is False
    assert bridge.bridge_state(bridge_name).addresses == (cidr,)  # type: ignore[union-attr]
    assert bridge.delete_link(bridge_name) is True
    assert bridge.bridge_state(bridge_name) is None
    assert bridge.delete_link(bridge_name) is False


async def test_veth_into_namespace_reaches_gateway(bridge_name: str, subnet_octet: int, netns_pid: int) -> None:
    gw = f"10.213.{subnet_octet}.1"
    await asyncio.to_thread(bridge.ensure_bridge, bridge_name, f"{gw}/24")
    plan = bridge.VethPlan(
        host_name=bridge.random_veth_name(), peer_name="eth0", bridge=bridge_name,
        mac=bridge.mac_for_ipv4(f"10.213.{subnet_octet}.2"), mtu=1500,
        address_cidr=f"10.213.{subnet_octet}.2/24", gateway=gw,
    )
    fd = bridge.open_netns(netns_pid)
    try:
        await asyncio.to_thread(bridge.create_veth, plan, fd)
    finally:
        os.close(fd)
    assert await asyncio.to_thread(bridge.links_with_master, bridge_name) == [plan.host_name]
    await run_in_netns(f"/proc/{netns_pid}/ns/net", lambda: bridge.configure_peer(plan))
    addr = nsexec(netns_pid, "ip", "-4", "addr", "show", "eth0").stdout
    assert f"inet 10.213.{subnet_octet}.2/24" in addr
    link = nsexec(netns_pid, "ip", "link", "show", "eth0").stdout
    assert plan.mac in link and "mtu 1500" in link
    assert nsexec(netns_pid, "ip", "-6", "addr", "show", "eth0").stdout.strip() == ""
    route = nsexec(netns_pid, "ip", "route").stdout
    assert f"default via {gw} dev eth0" in route and "proto" not in route.splitlines()[0]
    ping = nsexec(netns_pid, "busybox", "ping", "-c", "1", "-W", "2", gw)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    names = await run_in_netns(f"/proc/{netns_pid}/ns/net", bridge.netns_interfaces)
    assert sorted(names) == ["eth0", "lo"]
    assert await run_in_netns(f"/proc/{netns_pid}/ns/net", bridge.loopback_has_ipv6)
    # removing the peer inside the namespace removes the host side too
    await run_in_netns(f"/proc/{netns_pid}/ns/net", lambda: bridge.remove_peer("eth0"))
    assert not await asyncio.to_thread(bridge.link_exists, plan.host_name)


async def test_run_in_netns_propagates_errors_and_leaves_caller_alone(netns_pid: int) -> None:
    host_ns = os.readlink("/proc/thread-self/ns/net")

    def boom() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        await run_in_netns(f"/proc/{netns_pid}/ns/net", boom)
    inner = await run_in_netns(f"/proc/{netns_pid}/ns/net", lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inner == os.readlink(f"/proc/{netns_pid}/ns/net") != host_ns
    assert os.readlink("/proc/thread-self/ns/net") == host_ns
    with pytest.raises(FileNotFoundError):
        await run_in_netns("/proc/0/ns/net", lambda: None)
