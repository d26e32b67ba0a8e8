from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest

from runtime.config import DaemonConfig
from runtime.errors import Conflict, Forbidden, InvalidParameter, NotFound
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.network import bridge
from runtime.network.contract import ConnectTarget, EndpointConfig, Link, PortBindingSpec, SandboxRequest
from runtime.network.ipam import PoolConfig
from runtime.network.netns import run_in_netns
from runtime.network.service import NetworkCreate, NetworkService
from tests.runtime.network.conftest import NetnsFactory, container_request, nsexec


def cid() -> str:
    return secrets.token_hex(32)


async def wait_gone(link: str) -> None:
    for _ in range(200):
        if not await asyncio.to_thread(bridge.link_exists, link):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{link} still exists")


def subnet_of(svc: NetworkService) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(svc.default_bridge.subnet)


async def test_predefined_networks_and_default_bridge(service: NetworkService, bridge_name: str) -> None:
    names = sorted(v.network.name for v in service.views(Filters()))
    assert names == ["bridge", "host", "none"]
    default = service.find("bridge")
    assert default.bridge == bridge_name and default.driver == "bridge"
    assert default.options["com.docker.network.bridge.name"] == bridge_name
    state = await asyncio.to_thread(bridge.bridge_state, bridge_name)
    assert state is not None and state.addresses == (f"{default.gateway}/24",)
    assert service.find("host").driver == "host" and service.find("none").driver == "null"
    assert service.find(default.id[:8]) is default
    with pytest.raises(NotFound, match="^network nope not found$"):
        service.find("nope")


async def test_create_inspect_remove_user_network(service: NetworkService) -> None:
    events = service.events.subscribe()
    net_id = await service.create(NetworkCreate(name="pydt-n1", labels={"a": "b"}))
    net = service.find("pydt-n1")
    assert net.id == net_id and net.bridge == f"br-{net_id[:12]}"
    subnet = ipaddress.IPv4Network(net.subnet)
    from runtime.network.hostnet import reserved_networks

    assert not any(subnet.overlaps(r) for r in reserved_networks() if r != subnet)
    assert net.gateway == str(subnet.network_address + 1)
    assert await asyncio.to_thread(bridge.link_exists, net.bridge)
    with pytest.raises(Conflict, match="^network with name pydt-n1 already exists$"):
        await service.create(NetworkCreate(name="pydt-n1"))
    with pytest.raises(Forbidden, match="^operation is not permitted on predefined bridge network $"):
        await service.create(NetworkCreate(name="bridge"))
    with pytest.raises(NotFound, match='^plugin "overlay2x" not found$'):
        await service.create(NetworkCreate(name="x", driver="overlay2x"))
    with pytest.raises(InvalidParameter, match="invalid network config"):
        await service.create(NetworkCreate(name="x", ipam_config=(PoolConfig(subnet="10.213.1.1/24"),)))
    assert [v.network.name for v in service.views(Filters.of({"type": ["custom"]}))] == ["pydt-n1"]
    assert [v.network.name for v in service.views(Filters.of({"label": ["a=b"]}))] == ["pydt-n1"]
    assert [v.network.name for v in service.views(Filters.of({"name": ["n1"]}))] == ["pydt-n1"]
    assert [v.network.name for v in service.views(Filters.of({"dangling": ["true"]}))] == ["pydt-n1"]
    assert sorted(v.network.name for v in service.views(Filters.of({"driver": ["bridge"]}))) == ["bridge", "pydt-n1"]
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        service.views(Filters.of({"bogus": ["x"]}))
    with pytest.raises(Forbidden, match="^bridge is a pre-defined network and cannot be removed$"):
        await service.remove("bridge")
    await service.remove("pydt-n1")
    assert not await asyncio.to_thread(bridge.link_exists, net.bridge)
    with pytest.raises(NotFound):
        service.find("pydt-n1")
    seen = []
    while len(seen) < 2:
        ev = await asyncio.wait_for(events.__aiter__().__anext__(), 2)
        seen.append((ev.action, ev.actor_id, dict(ev.attributes)))
    assert seen == [("create", net_id, {"name": "pydt-n1", "type": "bridge"}),
                    ("destroy", net_id, {"name": "pydt-n1", "type": "bridge"})]
    events.close()


async def test_static_subnet_overlap_is_forbidden(service: NetworkService, subnet_octet: int) -> None:
    with pytest.raises(Forbidden, match="^invalid pool request: Pool overlaps with other one on this address space$"):
        await service.create(NetworkCreate(name="x", ipam_config=(PoolConfig(subnet=f"10.213.{subnet_octet}.0/24"),)))


async def test_default_bridge_attach_files_and_detach(
    service: NetworkService, netns_pid: int, tmp_path: Path, bridge_name: str
) -> None:
    c = cid()
    req = container_request(c, "web", tmp_path, extra_hosts=("gw:host-gateway", "db:10.0.0.9"),
                            exposed_ports=("80/tcp",))
    settings = await service.attach_container(req, netns_pid)
    net = settings["Networks"]["bridge"]
    ip = ipaddress.IPv4Address(net["IPAddress"])
    assert ip in subnet_of(service) and net["IPPrefixLen"] == 24
    assert net["Gateway"] == service.default_bridge.gateway == settings["Gateway"]
    assert net["MacAddress"] == bridge.mac_for_ipv4(ip) == settings["MacAddress"]
    assert settings["IPAddress"] == str(ip) and settings["EndpointID"] == net["EndpointID"]
    assert net["NetworkID"] == service.default_bridge.id and net["DNSNames"] is None
    assert settings["Ports"] == {"80/tcp": None}
    assert settings["SandboxKey"] == f"/proc/{netns_pid}/ns/net"
    assert "inet " + str(ip) in nsexec(netns_pid, "ip", "-4", "addr", "show", "eth0").stdout
    ping = nsexec(netns_pid, "busybox", "ping", "-c", "1", "-W", "2", service.default_bridge.gateway)
    assert ping.returncode == 0, ping.stdout
    hosts = Path(req.hosts_path).read_text()
    assert hosts.endswith(f"{service.default_bridge.gateway}\tgw\n10.0.0.9\tdb\n{ip}\t{c[:12]}\n")
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    resolv = Path(req.resolv_conf_path).read_text()
    assert "(legacy)" in resolv and "nameserver 127.0.0.11" not in resolv
    assert service.settings(c) == settings
    assert service.container_network_ids(c) == [service.default_bridge.id]
    view = service.view("bridge")
    assert [(a.container_id, a.name, a.ipv4) for a in view.containers] == [(c, "web", f"{ip}/24")]
    veth = service.context.sandboxes[c].endpoints[service.default_bridge.id].host_veth
    assert await asyncio.to_thread(bridge.links_with_master, bridge_name) == [veth]
    assert (service.context.root / "sandboxes" / f"{c}.json").exists()
    await service.detach_container(c)
    await service.detach_container(c)  # idempotent
    await wait_gone(veth)
    assert service.settings(c) is None
    assert not (service.context.root / "sandboxes" / f"{c}.json").exists()
    # the address is free again
    c2 = cid()
    again = await service.attach_container(container_request(c2, "web2", tmp_path), netns_pid)
    assert again["Networks"]["bridge"]["IPAddress"] == str(ip)


def _query(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.11", timeout=3)


async def test_user_network_dns_aliases_and_isolation(
    service: NetworkService, netns_factory: NetnsFactory, tmp_path: Path
) -> None:
    await service.create(NetworkCreate(name="pydt-a"))
    await service.create(NetworkCreate(name="pydt-b"))
    p1, p2, p3 = netns_factory(), netns_factory(), netns_factory()
    c1, c2, c3 = cid(), cid(), cid()
    s1 = await service.attach_container(
        container_request(c1, "one", tmp_path, network_mode="pydt-a",
                          endpoints={"pydt-a": EndpointConfig(aliases=("db",))}), p1)
    s2 = await service.attach_container(container_request(c2, "two", tmp_path, network_mode="pydt-a"), p2)
    s3 = await service.attach_container(container_request(c3, "three", tmp_path, network_mode="pydt-b"), p3)
    ip1 = s1["Networks"]["pydt-a"]["IPAddress"]
    ip3 = s3["Networks"]["pydt-b"]["IPAddress"]
    assert s1["Networks"]["pydt-a"]["DNSNames"] == ["one", "db", c1[:12], c1[:12]][:3]
    assert s1["Networks"]["pydt-a"]["Aliases"] == ["db"] and s1["IPAddress"] == ""
    ns2 = f"/proc/{p2}/ns/net"
    for name in ("one", "db", "ONE", "one.pydt-a", c1[:12]):
        resp = await run_in_netns(ns2, lambda n=name: _query(n))  # type: ignore[misc]
        assert [r.to_text() for r in resp.answer[0]] == [ip1], name
    resp = await run_in_netns(ns2, lambda: _query("three"))
    assert resp.rcode() != 0 or not resp.answer  # another network's container is unknown here
    ptr = await run_in_netns(ns2, lambda: _query(ipaddress.ip_address(ip1).reverse_pointer, "PTR"))
    assert ptr.answer[0][0].to_text() == "one.pydt-a."
    resolv = Path(service.context.sandboxes[c2].request.resolv_conf_path).read_text()
    assert "nameserver 127.0.0.11\noptions ndots:0\n" in resolv and "# ExtServers: [host(" in resolv
    assert nsexec(p2, "busybox", "ping", "-c", "1", "-W", "2", ip1).returncode == 0
    blocked = nsexec(p3, "busybox", "ping", "-c", "1", "-W", "1", ip1)
    assert blocked.returncode != 0  # isolation between bridge networks
    assert nsexec(p1, "busybox", "ping", "-c", "1", "-W", "1", ip3).returncode != 0
    with pytest.raises(Forbidden) as err:
        await service.remove("pydt-b")
    assert str(err.value) == (
        f"error while removing network: network pydt-b has active endpoints "
        f'(name:"three" id:"{s3["Networks"]["pydt-b"]["EndpointID"][:12]}")'
    )
    await service.rename_container(c1, "uno")
    resp = await run_in_netns(ns2, lambda: _query("uno"))
    assert [r.to_text() for r in resp.answer[0]] == [ip1]


async def test_static_ip_and_endpoint_validation(service: NetworkService, netns_pid: int, tmp_path: Path) -> None:
    await service.create(NetworkCreate(name="pydt-s", ipam_config=(PoolConfig(subnet="10.213.199.0/24"),)))
    await service.create(NetworkCreate(name="pydt-d"))
    with pytest.raises(InvalidParameter, match="^user specified IP address is supported only when"):
        await service.validate_sandbox(container_request(cid(), "x", tmp_path, network_mode="pydt-d",
                                                         endpoints={"pydt-d": EndpointConfig(ipv4_address="10.0.0.5")}))
    with pytest.raises(InvalidParameter, match="^user specified IP address is supported on user defined networks only$"):
        await service.validate_sandbox(container_request(cid(), "x", tmp_path,
                                                         endpoints={"bridge": EndpointConfig(ipv4_address="10.0.0.5")}))
    with pytest.raises(InvalidParameter, match="^network-scoped alias is supported only"):
        await service.validate_sandbox(container_request(cid(), "x", tmp_path,
                                                         endpoints={"default": EndpointConfig(aliases=("a",))}))
    with pytest.raises(NotFound, match="^network nope not found$"):
        await service.validate_sandbox(container_request(cid(), "x", tmp_path, network_mode="nope"))
    warnings = await service.validate_sandbox(container_request(
        cid(), "x", tmp_path, network_mode="host", port_bindings={"80/tcp": (PortBindingSpec("", "8080"),)}))
    assert warnings == ["Published ports are discarded when using host network mode"]
    req = container_request(cid(), "s", tmp_path, network_mode="pydt-s",
                            endpoints={"pydt-s": EndpointConfig(ipv4_address="10.213.199.77")})
    assert await service.validate_sandbox(req) == []
    settings = await service.attach_container(req, netns_pid)
    assert settings["Networks"]["pydt-s"]["IPAddress"] == "10.213.199.77"
    assert settings["Networks"]["pydt-s"]["IPAMConfig"] == {"IPv4Address": "10.213.199.77"}
    inactive = service.inactive_settings(req)
    assert inactive["Networks"]["pydt-s"]["IPAddress"] == "" and inactive["Networks"]["pydt-s"]["NetworkID"]


async def test_published_ports_via_proxy_and_conflict(
    service: NetworkService, netns_factory: NetnsFactory, tmp_path: Path
) -> None:
    p1, p2 = netns_factory(), netns_factory()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        hport = probe.getsockname()[1]
    c1 = cid()
    req = container_request(c1, "srv", tmp_path, exposed_ports=("8000/tcp", "9/udp"),
                            port_bindings={"8000/tcp": (PortBindingSpec("127.0.0.1", str(hport)),)},
                            publish_all_ports=True)
    settings = await service.attach_container(req, p1)
    ports = settings["Ports"]
    assert ports["8000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(hport)}]
    assert [b["HostIp"] for b in ports["9/udp"]] in (["0.0.0.0", "::"], ["0.0.0.0"])
    assert 32768 <= int(ports["9/udp"][0]["HostPort"]) <= 60999
    ip = settings["IPAddress"]

    def serve() -> socket.socket:
        s = socket.socket()
        s.bind((ip, 8000))
        s.listen()
        s.setblocking(False)
        return s

    server = await run_in_netns(f"/proc/{p1}/ns/net", serve)
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", hport), 5)
    conn, _ = await asyncio.wait_for(loop.sock_accept(server), 5)
    await loop.sock_sendall(conn, b"hi")
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"hi"
    writer.close()
    conn.close()
    server.close()
    dump = await service.firewall.dump("nat")
    assert any(f"--to-destination {ip}:9" in line for line in dump)
    # a second container asking for the same host port fails with dockerd's message
    c2 = cid()
    req2 = container_request(c2, "dup", tmp_path, exposed_ports=("80/tcp",),
                             port_bindings={"80/tcp": (PortBindingSpec("127.0.0.1", str(hport)),)})
    with pytest.raises(Exception) as err:
        await service.attach_container(req2, p2)
    assert str(err.value).startswith("driver failed programming external connectivity on endpoint dup (")
    assert str(err.value).endswith(f"): Bind for 127.0.0.1:{hport} failed: port is already allocated")
    assert service.settings(c2) is None and len(service.view("bridge").containers) == 1
    await service.detach_container(c1)
    assert not any(f"{ip}:9" in line for line in await service.firewall.dump("nat"))
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", hport)


class FakeDirectory:
    def __init__(self) -> None:
        self.targets: dict[str, ConnectTarget] = {}
        self.changes: list[tuple[str, dict[str, EndpointConfig], dict[str, Any] | None]] = []

    def network_target(self, ref: str) -> ConnectTarget:
        from runtime.errors import ContainerNotFound

        for t in self.targets.values():
            if ref in (t.request.container_id, t.request.name):
                return t
        raise ContainerNotFound(ref)

    async def endpoints_changed(self, container_id: str, endpoints: Mapping[str, EndpointConfig],
                                settings: dict[str, Any] | None) -> None:
        self.changes.append((container_id, dict(endpoints), settings))
        t = next(t for t in self.targets.values() if t.request.container_id == container_id)
        from dataclasses import replace

        self.targets[container_id] = ConnectTarget(replace(t.request, endpoints=dict(endpoints)), t.running_pid)


async def test_live_connect_and_disconnect(service: NetworkService, netns_factory: NetnsFactory, tmp_path: Path) -> None:
    directory = FakeDirectory()
    service.set_container_directory(directory)
    await service.create(NetworkCreate(name="pydt-c"))
    p1, p2 = netns_factory(), netns_factory()
    c1, c2 = cid(), cid()
    r1 = container_request(c1, "web", tmp_path)
    r2 = container_request(c2, "api", tmp_path, network_mode="pydt-c")
    await service.attach_container(r1, p1)
    s2 = await service.attach_container(r2, p2)
    directory.targets = {c1: ConnectTarget(r1, p1), c2: ConnectTarget(r2, p2)}
    await service.connect("pydt-c", "web", EndpointConfig(aliases=("frontend",)))
    settings = service.settings(c1)
    assert settings is not None and set(settings["Networks"]) == {"bridge", "pydt-c"}
    assert "eth1" in nsexec(p1, "ip", "-o", "link").stdout
    ip_api = s2["Networks"]["pydt-c"]["IPAddress"]
    assert nsexec(p1, "busybox", "ping", "-c", "1", "-W", "2", ip_api).returncode == 0
    resp = await run_in_netns(f"/proc/{p2}/ns/net", lambda: _query("frontend"))
    assert [r.to_text() for r in resp.answer[0]] == [settings["Networks"]["pydt-c"]["IPAddress"]]
    # c1 got the embedded DNS when it joined a user-defined network
    resp = await run_in_netns(f"/proc/{p1}/ns/net", lambda: _query("api"))
    assert [r.to_text() for r in resp.answer[0]] == [ip_api]
    with pytest.raises(Forbidden, match="^endpoint with name web already exists in network pydt-c$"):
        await service.connect("pydt-c", "web", EndpointConfig())
    assert directory.changes[-1][0] == c1 and set(directory.changes[-1][1]) == {"pydt-c"}
    await service.disconnect("pydt-c", "web")
    settings = service.settings(c1)
    assert settings is not None and set(settings["Networks"]) == {"bridge"}
    assert "eth1" not in nsexec(p1, "ip", "-o", "link").stdout
    assert directory.changes[-1][1] == {}
    with pytest.raises(Exception, match="is not connected to"):
        await service.disconnect("pydt-c", "web")


async def test_crash_reconciliation(tmp_path: Path, netns_factory: NetnsFactory, bridge_name: str, subnet_octet: int) -> None:
    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec", bridge=bridge_name,
                          bip=f"10.213.{subnet_octet}.1/24")
    first = await NetworkService.open(config, EventBus())
    net_id = await first.create(NetworkCreate(name="pydt-r"))
    alive, dead = netns_factory(), netns_factory()
    ca, cd = cid(), cid()
    sa = await first.attach_container(container_request(ca, "alive", tmp_path, network_mode="pydt-r"), alive)
    sd = await first.attach_container(container_request(cd, "dead", tmp_path, network_mode="pydt-r"), dead)
    veth_dead = first.context.sandboxes[cd].endpoints[net_id].host_veth
    # "crash": drop the service without closing it, and lose one container meanwhile
    await first.context.dns.close()
    netns_factory.kill(dead)
    second = await NetworkService.open(config, EventBus())
    try:
        assert not await asyncio.to_thread(bridge.link_exists, veth_dead)
        assert not (second.context.root / "sandboxes" / f"{cd}.json").exists()
        assert second.settings(ca) is not None and second.settings(cd) is None
        allocated = {str(a) for a in second.context.ipam.allocated(net_id)}
        assert sa["Networks"]["pydt-r"]["IPAddress"] in allocated
        assert sd["Networks"]["pydt-r"]["IPAddress"] not in allocated
        # the surviving container's DNS is served again by the new daemon
        resp = await run_in_netns(f"/proc/{alive}/ns/net", lambda: _query("alive"))
        assert [r.to_text() for r in resp.answer[0]] == [sa["Networks"]["pydt-r"]["IPAddress"]]
        await second.detach_container(ca)
        bridge_r = second.find("pydt-r").bridge
    finally:
        await second.close()
    # clean stop: no rules left, the unused user bridge is gone, the default bridge stays
    for table in ("filter", "nat"):
        out = await asyncio.to_thread(lambda t=table: os.popen(f"iptables -w -t {t} -S").read())  # type: ignore[misc]
        assert second.firewall.chains.forward not in out and second.firewall.chains.dnat not in out
    assert not await asyncio.to_thread(bridge.link_exists, bridge_r)
    assert await asyncio.to_thread(bridge.link_exists, bridge_name)
    # and a restart after a clean stop brings the user network back
    third = await NetworkService.open(config, EventBus())
    try:
        assert await asyncio.to_thread(bridge.link_exists, bridge_r)
    finally:
        await third.remove("pydt-r")
        await third.close()


async def test_none_and_host_modes(service: NetworkService, netns_pid: int, tmp_path: Path) -> None:
    c = cid()
    req = container_request(c, "nonet", tmp_path, network_mode="none")
    settings = await service.attach_container(req, netns_pid)
    assert list(settings["Networks"]) == ["none"] and settings["Networks"]["none"]["IPAddress"] == ""
    assert len(nsexec(netns_pid, "ip", "-o", "link").stdout.splitlines()) == 1  # only lo
    assert Path(req.hosts_path).read_text().startswith("127.0.0.1\tlocalhost\n")
    assert "(legacy)" not in Path(req.resolv_conf_path).read_text()
    await service.detach_container(c)
    h = cid()
    hreq = container_request(h, "hostnet", tmp_path, network_mode="host")
    settings = await service.attach_container(hreq, None)
    assert list(settings["Networks"]) == ["host"] and settings["Ports"] == {}
    assert Path(hreq.hosts_path).read_text() == Path("/etc/hosts").read_text()
    assert [a.name for a in service.view("host").containers] == ["hostnet"]


async def test_degraded_without_a_working_firewall(tmp_path: Path, netns_pid: int, bridge_name: str,
                                                   subnet_octet: int) -> None:
    from runtime.errors import SystemError_
    from runtime.network.firewall import Firewall

    config = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "exec", bridge=bridge_name,
                          bip=f"10.213.{subnet_octet}.1/24")
    svc = await NetworkService.open(config, EventBus(), firewall=Firewall("tdegrade", iptables="/nonexistent/iptables"))
    try:
        assert sorted(v.network.name for v in svc.views(Filters())) == ["bridge", "host", "none"]
        with pytest.raises(SystemError_, match="^bridge networking is unavailable: "):
            await svc.attach_container(container_request(cid(), "x", tmp_path), netns_pid)
        settings = await svc.attach_container(container_request(cid(), "h", tmp_path, network_mode="host"), None)
        assert list(settings["Networks"]) == ["host"]
    finally:
        await svc.close()


async def test_no_firewall_rule_comes_back_after_a_clean_stop(service: NetworkService) -> None:
    """A detach that lands after close (an exit handled late) must not re-create the
    chains that the clean stop removed."""
    import subprocess

    chain = service.firewall.chains.forward
    if "PYDOCKER" not in subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout:
        pytest.skip("no iptables rules on this host")
    await service.close()
    await service.context.sync_firewall()
    assert chain not in subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
