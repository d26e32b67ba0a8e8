from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess

import pytest

from runtime.network import bridge
from runtime.network.firewall import BridgeRules, Chains, Firewall, PortRule, daemon_tag, render_rules
from runtime.network.netns import NetnsHandle, run_in_netns


def test_daemon_tag_is_stable_and_short() -> None:
    assert daemon_tag("/var/lib/pydockerd") == daemon_tag("/var/lib/pydockerd")
    assert daemon_tag("/a") != daemon_tag("/b")
    assert len(daemon_tag("/a")) == 8
    assert len(Chains(daemon_tag("/a")).iso1) <= 28  # iptables' chain name limit


def test_render_rules() -> None:
    chains = Chains("abcd1234")
    text = render_rules(
        chains,
        [BridgeRules("br0", "10.213.1.0/24"), BridgeRules("br1", "10.213.2.0/24", internal=True)],
        [PortRule("tcp", "", 8080, "10.213.1.2", 80, "br0"), PortRule("udp", "127.0.0.1", 53, "10.213.1.2", 53, "br0")],
    )
    lines = text.splitlines()
    assert lines[0] == "*filter" and ":PYDOCKER-FWD-abcd1234 - [0:0]" in lines
    assert "-A PYDOCKER-ISO1-abcd1234 -i br0 ! -o br0 -j PYDOCKER-ISO2-abcd1234" in lines
    assert "-A PYDOCKER-ISO2-abcd1234 -o br1 -j DROP" in lines
    assert "-A PYDOCKER-ISO1-abcd1234 ! -s 10.213.2.0/24 -o br1 -j DROP" in lines
    assert "-A PYDOCKER-FWD-abcd1234 -i br0 ! -o br0 -j ACCEPT" in lines
    assert "-A PYDOCKER-FWD-abcd1234 -i br1 ! -o br1 -j ACCEPT" not in lines  # internal: no way out
    assert "-A PYDOCKER-POST-abcd1234 -s 10.213.1.0/24 ! -o br0 -j MASQUERADE" in lines
    assert not any("-s 10.213.2.0/24 ! -o br1 -j MASQUERADE" in line for line in lines)
    assert ("-A PYDOCKER-DNAT-abcd1234 ! -i br0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.213.1.2:80"
            in lines)
    assert ("-A PYDOCKER-DNAT-abcd1234 -d 127.0.0.1/32 ! -i br0 -p udp -m udp --dport 53 -j DNAT "
            "--to-destination 10.213.1.2:53" in lines)
    assert lines.count("COMMIT") == 2


def _iptables_s(table: str) -> str:
    return subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
async def firewall() -> Firewall:
    fw = Firewall("t" + secrets.token_hex(3) + "x")
    if not fw.available:
        pytest.skip("no iptables")
    await fw.setup()
    yield fw  # type: ignore[misc]
    await fw.teardown()


async def test_setup_sync_teardown_leave_nothing(firewall: Firewall) -> None:
    assert firewall.backend == "iptables" and firewall.variant in ("nf_tables", "legacy")
    await firewall.setup()  # idempotent: still one jump each
    assert _iptables_s("filter").count(f"-j {firewall.chains.forward}") == 1
    assert _iptables_s("nat").count(f"-j {firewall.chains.dnat}") == 2
    await firewall.sync([BridgeRules("pydt-x", "10.213.199.0/24")], [PortRule("tcp", "", 18080, "10.213.199.2", 80, "pydt-x")])
    assert "--to-destination 10.213.199.2:80" in _iptables_s("nat")
    await firewall.sync([BridgeRules("pydt-x", "10.213.199.0/24")], [])
    assert "--to-destination 10.213.199.2:80" not in _iptables_s("nat")
    assert "-s 10.213.199.0/24 ! -o pydt-x -j MASQUERADE" in _iptables_s("nat")
    await firewall.teardown()
    for table in ("filter", "nat"):
        assert firewall.chains.forward not in _iptables_s(table)
        assert firewall.chains.dnat not in _iptables_s(table)


async def test_dnat_reaches_a_namespace(firewall: Firewall, bridge_name: str, subnet_octet: int, netns_pid: int) -> None:
    gw, cip = f"10.213.{subnet_octet}.1", f"10.213.{subnet_octet}.2"
    await asyncio.to_thread(bridge.claim_bridge, bridge_name, f"{gw}/24")
    plan = bridge.VethPlan(bridge.random_veth_name(), "eth0", bridge_name, bridge.mac_for_ipv4(cip), 1500, f"{cip}/24", gw)
    handle = NetnsHandle.of_pid(netns_pid)
    try:
        await asyncio.to_thread(bridge.create_veth, plan, handle.fd)
    finally:
        handle.close()

    def listen() -> socket.socket:
        bridge.configure_peer(plan)
        s = socket.socket()
        s.bind((cip, 8000))
        s.listen()
        s.setblocking(False)
        return s

    server = await run_in_netns(f"/proc/{netns_pid}/ns/net", listen)
    host_port = 20000 + subnet_octet
    await firewall.sync([BridgeRules(bridge_name, f"10.213.{subnet_octet}.0/24")],
                        [PortRule("tcp", "", host_port, cip, 8000, bridge_name)])
    loop = asyncio.get_running_loop()
    # the gateway address is local to the host, so OUTPUT's DNAT applies to it
    reader, writer = await asyncio.wait_for(asyncio.open_connection(gw, host_port), 5)
    conn, _ = await asyncio.wait_for(loop.sock_accept(server), 5)
    await loop.sock_sendall(conn, b"pong")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"pong"
    writer.close()
    conn.close()
    server.close()


async def test_docker_user_chain_first_and_never_flushed(firewall: Firewall) -> None:
    """An administrator's DOCKER-USER rule stays, and FORWARD jumps to DOCKER-USER before
    our chain, across teardown and a new setup (a daemon restart)."""
    marker = ["-s", "192.0.2.77/32", "-m", "comment", "--comment", f"pydt-{firewall.chains.forward}", "-j", "RETURN"]
    subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", "1", *marker], check=True)
    try:
        for _ in range(2):
            forward = [r for r in _iptables_s("filter").splitlines() if r.startswith("-A FORWARD")]
            assert forward[0] == "-A FORWARD -j DOCKER-USER"
            assert forward.count("-A FORWARD -j DOCKER-USER") == 1
            assert forward.index(f"-A FORWARD -j {firewall.chains.forward}") > 0
            await firewall.teardown()
            assert "192.0.2.77/32" in _iptables_s("filter")
            assert "-A FORWARD -j DOCKER-USER" in _iptables_s("filter")
            await firewall.setup()
    finally:
        subprocess.run(["iptables", "-w", "-D", "DOCKER-USER", *marker], check=False)


async def test_ip6tables_rules_for_ipv6_networks() -> None:
    fw = Firewall("t" + secrets.token_hex(3) + "y", family=6)
    if not fw.available:
        pytest.skip("no ip6tables")
    await fw.setup()
    try:
        await fw.sync([BridgeRules("pydt-x6", "fd42:99::/64")], [])
        nat = subprocess.run(["ip6tables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        assert f"-A {fw.chains.post} -s fd42:99::/64 ! -o pydt-x6 -j MASQUERADE" in nat
        assert f"! -d ::1/128 -m addrtype --dst-type LOCAL -j {fw.chains.dnat}" in nat
        filt = subprocess.run(["ip6tables", "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout
        assert filt.splitlines()[1] == "-A FORWARD -j DOCKER-USER"
    finally:
        await fw.teardown()
    nat = subprocess.run(["ip6tables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert fw.chains.post not in nat
