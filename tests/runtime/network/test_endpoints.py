"""Endpoint settings: which networks a container joins, link aliases, MAC and link-local
addresses, the container-wide MacAddress rule, and connect/disconnect of the NetworkMode
network (what Compose 1.29 does before every start)."""

from __future__ import annotations

import secrets
from pathlib import Path

import dns.message
import dns.query
import pytest

from runtime.containers.links import canonical_link, link_alias, without_link
from runtime.errors import InvalidParameter
from runtime.network.contract import PRIMARY_LEFT, ConnectTarget, EndpointConfig, SandboxRequest
from runtime.network.versioned import (
    ERR_MAC_DIFFERS,
    ERR_MAC_MATCH,
    ERR_MAC_MODE,
    WARN_MAC_DEPRECATED,
    migrate_container_mac,
    with_legacy_aliases,
)
from runtime.network.ipam import PoolConfig
from runtime.network.model import Endpoint, Network
from runtime.network.netns import run_in_netns
from runtime.network.sandboxes import check_endpoint, link_aliases, link_local_cidrs, requested
from runtime.network.service import NetworkCreate, NetworkService
from tests.runtime.network.conftest import NetnsFactory, container_request, nsexec
from tests.runtime.network.test_service import FakeDirectory


def _req(mode: str, endpoints: dict[str, EndpointConfig] | None = None, **kw: object) -> SandboxRequest:
    return SandboxRequest(container_id="c" * 64, name="c", hostname="h", network_mode=mode,
                          endpoints=endpoints or {}, **kw)  # type: ignore[arg-type]


def test_requested_primary_first_then_sorted() -> None:
    a = EndpointConfig(aliases=("a",))
    got = requested(_req("n1", {"zz": EndpointConfig(), "n1": a, "aa": EndpointConfig()}))
    assert got == [("n1", a), ("aa", EndpointConfig()), ("zz", EndpointConfig())]
    assert requested(_req("default", {"bridge": a})) == [("bridge", a)]


def test_requested_after_leaving_the_primary_network() -> None:
    assert requested(_req("n1", {PRIMARY_LEFT: EndpointConfig()})) == []
    assert requested(_req("n1", {PRIMARY_LEFT: EndpointConfig(), "n2": EndpointConfig()})) == [("n2", EndpointConfig())]
    back = EndpointConfig(aliases=("web",))
    assert requested(_req("n1", {PRIMARY_LEFT: EndpointConfig(), "n1": back})) == [("n1", back)]


def test_endpoint_config_wire_round_trip() -> None:
    wire = {"IPAMConfig": {"IPv4Address": "10.1.0.5", "LinkLocalIPs": ["169.254.8.8"]},
            "Aliases": ["x"], "Links": ["up:bar"], "MacAddress": "02:42:ac:11:00:02",
            "DriverOpts": {"k": "v"}, "GwPriority": 3}
    cfg = EndpointConfig.from_wire(wire)
    assert cfg.link_local_ips == ("169.254.8.8",)
    assert cfg.to_wire() == {**wire, "IPAMConfig": {"IPv4Address": "10.1.0.5", "LinkLocalIPs": ["169.254.8.8"]}}
    assert link_local_cidrs(cfg) == ("169.254.8.8/16",)
    assert link_local_cidrs(EndpointConfig(link_local_ips=("fe80::8",))) == ("fe80::8/64",)


def _net(name: str = "n1") -> Network:
    return Network(id=secrets.token_hex(32), name=name, driver="bridge", created="",
                   ipam_config=[PoolConfig(subnet="10.9.0.0/24")], subnet="10.9.0.0/24")


def test_check_endpoint_ipv6_address_needs_an_ipv6_pool_not_enable_ipv6() -> None:
    v6_pool_only = _net()
    v6_pool_only.ipam_config.append(PoolConfig(subnet="2001:389::/64"))
    check_endpoint(v6_pool_only, EndpointConfig(ipv6_address="2001:389::f00d"))
    check_endpoint(v6_pool_only, EndpointConfig(ipv6_address="2001:999::1"))  # kept, never assigned
    with pytest.raises(InvalidParameter, match="user configured subnets"):
        check_endpoint(_net(), EndpointConfig(ipv6_address="2001:389::f00d"))
    enabled = _net()
    enabled.ipam_config.append(PoolConfig(subnet="2001:389::/64"))
    enabled.subnet6 = "2001:389::/64"
    with pytest.raises(InvalidParameter, match="^no configured subnet or ip-range contain the IP address"):
        check_endpoint(enabled, EndpointConfig(ipv6_address="2001:999::1"))


def test_check_endpoint_mac_and_link_local() -> None:
    check_endpoint(_net(), EndpointConfig(mac_address="02:42:AC:11:00:02", link_local_ips=("169.254.1.1",)))
    with pytest.raises(InvalidParameter, match="^invalid MAC address 02:42$"):
        check_endpoint(_net(), EndpointConfig(mac_address="02:42"))
    with pytest.raises(InvalidParameter, match="^invalid link-local IP address: nope$"):
        check_endpoint(_net(), EndpointConfig(link_local_ips=("nope",)))


def test_link_aliases_from_endpoint_links() -> None:
    ep = Endpoint(_net().id, "e", config=EndpointConfig(links=("/docker-py-up:/c/bar", "plain", "Up:Db")))
    assert link_aliases(ep) == {"bar": "docker-py-up", "plain": "plain", "db": "up"}


@pytest.mark.parametrize("mode", ["", "default", "bridge", "n1"])
def test_container_mac_below_1_44_moves_to_the_endpoint(mode: str) -> None:
    got = migrate_container_mac("02:42:ac:11:00:0a", mode, {}, legacy=True)
    key = mode if mode == "n1" else "bridge"
    assert got.endpoints == {key: {"MacAddress": "02:42:ac:11:00:0a"}}
    assert got.container_mac == "02:42:ac:11:00:0a" and got.warnings == ()
    # without a container-wide address, endpoint addresses did not exist yet: dropped
    got = migrate_container_mac("", mode, {"n1": {"MacAddress": "02:00:00:00:00:01"}}, legacy=True)
    assert got.endpoints == {"n1": {}}
    with pytest.raises(InvalidParameter, match=f"^{ERR_MAC_MODE}$"):
        migrate_container_mac("02:42:ac:11:00:0a", "host", {}, legacy=True)


def test_container_mac_from_1_44_is_deprecated() -> None:
    got = migrate_container_mac("02:42:ac:11:00:0a", "n1", {"n1": {"Aliases": ["a"]}}, legacy=False)
    assert got.endpoints == {"n1": {"Aliases": ["a"], "MacAddress": "02:42:ac:11:00:0a"}}
    assert got.container_mac == "" and got.warnings == (WARN_MAC_DEPRECATED,)
    with pytest.raises(InvalidParameter, match="^if a container-wide MAC"):
        migrate_container_mac("02:42:ac:11:00:0a", "n1", {"n2": {}}, legacy=False)
    assert ERR_MAC_MATCH.startswith("if a container-wide MAC")
    with pytest.raises(InvalidParameter, match="^the container-wide MAC address must match"):
        migrate_container_mac("02:42:ac:11:00:0a", "n1", {"n1": {"MacAddress": "02:00:00:00:00:01"}}, legacy=False)
    assert ERR_MAC_DIFFERS.startswith("the container-wide")
    assert migrate_container_mac("", "n1", {"n1": None}, legacy=False).endpoints == {"n1": {}}


def test_without_link() -> None:
    assert link_alias("/web:/app/db") == "db" and link_alias("web") == "web"
    assert without_link(("web:db", "cache"), "db") == ("cache",)
    assert without_link(("web:db",), "nope") is None
    assert without_link(None, "db") is None
    assert canonical_link("web:db", "/app") == canonical_link("/web:/app/db", "app") == "/web:/app/db"
    assert canonical_link("web", "app") == "/web:/app/web"


def _query(name: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.11", timeout=3)


async def test_reconnect_primary_with_settings(
    service: NetworkService, netns_factory: NetnsFactory, tmp_path: Path
) -> None:
    """Compose 1.29's dance: disconnect the NetworkMode network, connect it again with
    aliases; a running container then gets the configured MAC, link-local address and
    link alias."""
    directory = FakeDirectory()
    service.set_container_directory(directory)
    await service.create(NetworkCreate(name="pydt-e", ipam_config=(PoolConfig(subnet="10.213.199.0/24"),)))
    c1, c2 = secrets.token_hex(32), secrets.token_hex(32)
    r1 = container_request(c1, "web", tmp_path, network_mode="pydt-e")
    r2 = container_request(c2, "client", tmp_path, network_mode="pydt-e")
    directory.targets = {c1: ConnectTarget(r1, None), c2: ConnectTarget(r2, None)}
    await service.disconnect("pydt-e", "web")
    assert service.inactive_settings(directory.targets[c1].request)["Networks"] == {}
    await service.connect("pydt-e", "web", EndpointConfig(aliases=("svc",), mac_address="02:42:0a:00:00:99",
                                                          link_local_ips=("169.254.8.8",)))
    r1 = directory.targets[c1].request
    inactive = service.inactive_settings(r1)["Networks"]["pydt-e"]
    assert inactive["Aliases"] == ["svc"] and inactive["MacAddress"] == "02:42:0a:00:00:99"
    assert inactive["IPAMConfig"] == {"LinkLocalIPs": ["169.254.8.8"]}
    await service.disconnect("pydt-e", "client")
    await service.connect("pydt-e", "client", EndpointConfig(links=("web:backend",)))
    p1, p2 = netns_factory(), netns_factory()
    live = (await service.attach_container(r1, p1))["Networks"]["pydt-e"]
    await service.attach_container(directory.targets[c2].request, p2)
    assert live["MacAddress"] == "02:42:0a:00:00:99" and live["DNSNames"] == ["web", "svc", c1[:12]]
    addrs = nsexec(p1, "ip", "-o", "addr", "show", "eth0").stdout
    assert "02:42:0a:00:00:99" in nsexec(p1, "ip", "-o", "link", "show", "eth0").stdout
    assert "169.254.8.8/16" in addrs
    for name in ("svc", "backend"):
        resp = await run_in_netns(f"/proc/{p2}/ns/net", lambda n=name: _query(n))  # type: ignore[misc]
        assert [r.to_text() for r in resp.answer[0]] == [live["IPAddress"]]


def test_legacy_aliases_list_short_id_and_hostname_on_user_networks() -> None:
    settings = {"Ports": {}, "Networks": {"bridge": {"Aliases": None}, "n1": {"Aliases": ["web"]},
                                          "n2": {"Aliases": None}}}
    got = with_legacy_aliases(settings, "a" * 64, "web")
    assert got["Networks"]["bridge"] == {"Aliases": None}
    assert got["Networks"]["n1"]["Aliases"] == ["web", "a" * 12]
    assert got["Networks"]["n2"]["Aliases"] == ["a" * 12, "web"]
    assert settings["Networks"]["n1"] == {"Aliases": ["web"]}  # input untouched


def test_link_env_as_dockerd() -> None:
    from runtime.network.links import link_env, merge_link_env

    env = link_env("my-db", "/web/my-db", "10.0.0.2", ["80/tcp", "53/udp", "53/tcp"], ["FOO=bar", "PATH=/x", "HOME=/"])
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.2:53"  # lowest number, tcp first
    assert env[1:5] == ["MY_DB_PORT_53_TCP=tcp://10.0.0.2:53", "MY_DB_PORT_53_TCP_ADDR=10.0.0.2",
                        "MY_DB_PORT_53_TCP_PORT=53", "MY_DB_PORT_53_TCP_PROTO=tcp"]
    assert "MY_DB_PORT_80_TCP=tcp://10.0.0.2:80" in env and "MY_DB_PORT_53_UDP_PROTO=udp" in env
    assert env[-2:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_FOO=bar"]
    merged = merge_link_env(("PATH=/bin", "HOSTNAME=h", "TERM=xterm", "MY_DB_NAME=mine"), env)
    assert merged[:4] == ("PATH=/bin", "HOSTNAME=h", "TERM=xterm", "MY_DB_PORT=tcp://10.0.0.2:53")
    assert merged[-1] == "MY_DB_NAME=mine" and "MY_DB_NAME=/web/my-db" not in merged
    assert merge_link_env(("PATH=/bin",), []) == ("PATH=/bin",)
