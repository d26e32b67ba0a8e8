from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from runtime.errors import SystemError_
from runtime.network import bridge
from runtime.network.model import BridgeClaim
from runtime.network.netns import NetnsGone, NetnsHandle, run_in_netns
from tests.runtime.network.conftest import NetnsFactory, nsexec


def test_mac_and_veth_names() -> None:
    assert bridge.mac_for_ipv4("172.17.0.2") == "02:42:ac:11:00:02"
    name = bridge.random_veth_name()
    assert name.startswith("veth") and len(name) == 11
    int(name[4:], 16)


def test_claim_bridge_creates_and_release_deletes_what_it_created(bridge_name: str, subnet_octet: int) -> None:
    cidr = f"10.213.{subnet_octet}.1/24"
    claim = bridge.claim_bridge(bridge_name, cidr)
    assert claim == BridgeClaim(created=True)
    state = bridge.bridge_state(bridge_name)
    assert state is not None and state.up
    assert state.addresses == (cidr,)
    # claimed again (a daemon restart): still pydockerd's, the address not duplicated
    assert bridge.claim_bridge(bridge_name, cidr, earlier=claim) == claim
    assert bridge.bridge_state(bridge_name).addresses == (cidr,)  # type: ignore[union-attr]
    bridge.release_bridge(bridge_name, claim)
    assert bridge.bridge_state(bridge_name) is None
    bridge.release_bridge(bridge_name, claim)  # gone already: nothing to do
    assert bridge.delete_link(bridge_name) is False


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def test_adopted_bridge_is_given_back_as_found(bridge_name: str, subnet_octet: int) -> None:
    """dockerd's rule replaces the bridge's address with the network's gateway; releasing
    puts the host's address back and leaves the interface (and its down state) alone."""
    theirs, extra, ours = f"10.213.{subnet_octet}.1/24", "10.214.249.77/32", f"10.213.{subnet_octet}.254/24"
    _ip("link", "add", bridge_name, "type", "bridge")
    _ip("addr", "add", theirs, "dev", bridge_name)
    _ip("addr", "add", extra, "dev", bridge_name)
    # the address inside the network's subnet is the one replaced
    claim = bridge.claim_bridge(bridge_name, ours)
    assert claim == BridgeClaim(created=False, added=ours, displaced=(theirs,), brought_up=True)
    state = bridge.bridge_state(bridge_name)
    assert state is not None and state.up and set(state.addresses) == {extra, ours}
    # a restart claims it again: what the first claim did is still remembered
    again = bridge.claim_bridge(bridge_name, ours, earlier=claim)
    assert again == claim
    bridge.release_bridge(bridge_name, again)
    state = bridge.bridge_state(bridge_name)
    assert state is not None and not state.up and set(state.addresses) == {theirs, extra}


def test_adopted_bridge_with_the_gateway_already_is_left_unchanged(bridge_name: str, subnet_octet: int) -> None:
    cidr = f"10.213.{subnet_octet}.1/24"
    _ip("link", "add", bridge_name, "type", "bridge")
    _ip("addr", "add", cidr, "dev", bridge_name)
    _ip("link", "set", bridge_name, "up")
    claim = bridge.claim_bridge(bridge_name, cidr)
    assert claim == BridgeClaim(created=False)
    bridge.release_bridge(bridge_name, claim)
    state = bridge.bridge_state(bridge_name)
    assert state is not None and state.up and state.addresses == (cidr,)


def test_an_interface_that_is_not_a_bridge_is_refused_untouched(bridge_name: str) -> None:
    peer = bridge_name + "p"
    _ip("link", "add", bridge_name, "type", "veth", "peer", "name", peer)
    try:
        with pytest.raises(SystemError_, match=f"existing interface {bridge_name} is not a bridge"):
            bridge.claim_bridge(bridge_name, "10.214.249.1/24")
        assert bridge.bridge_state(bridge_name).addresses == ()  # type: ignore[union-attr]
        # neither releasing a claim nor deleting "our veth" by that name touches it
        bridge.release_bridge(bridge_name, BridgeClaim(created=True))
        assert not bridge.delete_veth(bridge_name, "pydt-nosuchbr")
        assert bridge.link_exists(bridge_name)
    finally:
        bridge.delete_link(bridge_name)


def test_delete_veth_only_deletes_a_veth_on_the_given_bridge(bridge_name: str, subnet_octet: int) -> None:
    bridge.claim_bridge(bridge_name, f"10.213.{subnet_octet}.1/24")
    plugged, loose = "pydtv" + bridge_name[-6:], "pydtw" + bridge_name[-6:]
    _ip("link", "add", plugged, "type", "veth", "peer", "name", plugged + "p")
    _ip("link", "add", loose, "type", "veth", "peer", "name", loose + "p")
    try:
        _ip("link", "set", plugged, "master", bridge_name)
        assert not bridge.delete_veth(loose, bridge_name)
        assert bridge.link_exists(loose)
        assert not bridge.delete_veth(bridge_name, bridge_name)  # the bridge is no veth
        assert bridge.delete_veth(plugged, bridge_name)
        assert not bridge.link_exists(plugged)
    finally:
        bridge.delete_link(loose)
        bridge.delete_link(plugged)


async def test_veth_into_namespace_reaches_gateway(bridge_name: str, subnet_octet: int, netns_pid: int) -> None:
    gw = f"10.213.{subnet_octet}.1"
    await asyncio.to_thread(bridge.claim_bridge, bridge_name, f"{gw}/24")
    plan = bridge.VethPlan(
        host_name=bridge.random_veth_name(), peer_name="eth0", bridge=bridge_name,
        mac=bridge.mac_for_ipv4(f"10.213.{subnet_octet}.2"), mtu=1500,
        address_cidr=f"10.213.{subnet_octet}.2/24", gateway=gw,
    )
    handle = NetnsHandle.of_pid(netns_pid)
    try:
        await asyncio.to_thread(bridge.create_veth, plan, handle.fd)
    finally:
        handle.close()
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


async def test_netns_handle_names_the_namespace_not_the_pid(netns_factory: NetnsFactory) -> None:
    pid = netns_factory()
    handle = NetnsHandle.of_pid(pid)
    try:
        assert handle.inode == os.stat(f"/proc/{pid}/ns/net").st_ino
        # the recorded inode is checked on the opened file
        with pytest.raises(NetnsGone, match="another network namespace"):
            NetnsHandle.of_pid(os.getpid(), expect_inode=handle.inode)
        NetnsHandle.of_pid(pid, expect_inode=handle.inode).close()
        netns_factory.kill(pid)
        with pytest.raises(NetnsGone):
            NetnsHandle.of_pid(pid)
        # the handle still reaches the (now process-less) namespace, never the host's
        inner = await run_in_netns(handle, lambda: os.readlink("/proc/thread-self/ns/net"))
        assert inner == f"net:[{handle.inode}]" != os.readlink("/proc/self/ns/net")
    finally:
        handle.close()
    with pytest.raises(NetnsGone):
        handle.fd
