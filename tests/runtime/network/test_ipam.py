from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from runtime.errors import Forbidden, InvalidParameter, Unavailable
from runtime.network.hostnet import nameserver_networks, parse_proc_route, reserved_networks
from runtime.network.ipam import (
    AddressInUse,
    AddressOutOfRange,
    Ipam,
    NoAvailableAddresses,
    PoolConfig,
    PoolOverlap,
    default_candidates,
    validate_ipam,
)


def test_default_candidates_follow_dockerd_order() -> None:
    cands = list(default_candidates())
    assert cands[:4] == [IPv4Network(n) for n in ("172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16", "172.20.0.0/16")]
    assert cands[14] == IPv4Network("172.31.0.0/16")
    assert cands[15] == IPv4Network("192.168.0.0/20")
    assert cands[16] == IPv4Network("192.168.16.0/20")
    assert len(cands) == 15 + 16


def test_dynamic_pool_skips_allocated_and_host_reserved() -> None:
    reserved = [IPv4Network("172.18.0.0/16"), IPv4Network("172.20.5.0/24")]
    ipam = Ipam(reserved=lambda: reserved)
    a = ipam.request_pool("a")
    b = ipam.request_pool("b")
    c = ipam.request_pool("c")
    assert (a.subnet, b.subnet, c.subnet) == (
        IPv4Network("172.17.0.0/16"), IPv4Network("172.19.0.0/16"), IPv4Network("172.21.0.0/16")
    )
    assert a.gateway == IPv4Address("172.17.0.1")
    assert not a.user_subnet


def test_dynamic_pool_never_overlaps_a_wide_host_route() -> None:
    ipam = Ipam(reserved=lambda: [IPv4Network("172.16.0.0/12")])
    assert ipam.request_pool("a").subnet == IPv4Network("192.168.0.0/20")


def test_released_pool_is_reused() -> None:
    ipam = Ipam()
    ipam.request_pool("a")
    ipam.request_pool("b")
    ipam.release_pool("a")
    assert ipam.request_pool("c").subnet == IPv4Network("172.17.0.0/16")


def test_exhaustion_message() -> None:
    ipam = Ipam(candidates=lambda: [IPv4Network("10.213.250.0/24")])
    ipam.request_pool("a")
    with pytest.raises(InvalidParameter, match="^all predefined address pools have been fully subnetted$"):
        ipam.request_pool("b")


def test_static_pool_with_gateway_and_overlap() -> None:
    ipam = Ipam()
    pool = ipam.request_pool("a", PoolConfig(subnet="10.213.99.0/24", gateway="10.213.99.254"))
    assert pool.gateway == IPv4Address("10.213.99.254")
    assert pool.user_subnet
    with pytest.raises(PoolOverlap) as err:
        ipam.request_pool("b", PoolConfig(subnet="10.213.99.128/25"))
    assert isinstance(err.value, Forbidden)
    assert str(err.value) == "invalid pool request: Pool overlaps with other one on this address space"
    # a failed request leaves nothing behind
    assert set(ipam.pools()) == {"a"}


def test_static_pool_is_not_checked_against_host_routes() -> None:
    ipam = Ipam(reserved=lambda: [IPv4Network("10.213.98.0/24")])
    assert ipam.request_pool("a", PoolConfig(subnet="10.213.98.0/24")).subnet == IPv4Network("10.213.98.0/24")


def test_ip_range_gateway_and_addresses_come_from_the_range() -> None:
    ipam = Ipam()
    pool = ipam.request_pool("a", PoolConfig(subnet="10.213.97.0/24", ip_range="10.213.97.128/25"))
    assert pool.gateway == IPv4Address("10.213.97.128")
    assert ipam.request_address("a") == IPv4Address("10.213.97.129")
    # a static address may lie outside the range but inside the subnet
    assert ipam.request_address("a", "10.213.97.5") == IPv4Address("10.213.97.5")


def test_first_free_and_reuse_after_release() -> None:
    ipam = Ipam()
    ipam.request_pool("a", PoolConfig(subnet="10.213.96.0/24"))
    got = [ipam.request_address("a") for _ in range(3)]
    assert got == [IPv4Address(f"10.213.96.{i}") for i in (2, 3, 4)]
    ipam.release_address("a", "10.213.96.3")
    assert ipam.request_address("a") == IPv4Address("10.213.96.3")
    assert ipam.allocated("a") == {IPv4Address(f"10.213.96.{i}") for i in (1, 2, 3, 4)}


def test_gateway_release_is_ignored() -> None:
    ipam = Ipam()
    ipam.request_pool("a", PoolConfig(subnet="10.213.96.0/24"))
    ipam.release_address("a", "10.213.96.1")
    assert ipam.request_address("a") == IPv4Address("10.213.96.2")


def test_bip_gateway_is_honoured() -> None:
    ipam = Ipam()
    pool = ipam.request_pool("bridge", PoolConfig(subnet="10.213.0.0/24"), gateway_ip="10.213.0.1")
    assert pool.gateway_cidr == "10.213.0.1/24"


def test_static_address_errors() -> None:
    ipam = Ipam()
    ipam.request_pool("a", PoolConfig(subnet="10.213.96.0/24"))
    ipam.request_address("a", "10.213.96.7")
    with pytest.raises(AddressInUse, match="^Address already in use$"):
        ipam.request_address("a", "10.213.96.7")
    with pytest.raises(AddressOutOfRange):
        ipam.request_address("a", "10.213.95.7")
    with pytest.raises(AddressInUse):
        ipam.request_address("a", "10.213.96.255")


def test_pool_exhaustion_is_unavailable() -> None:
    ipam = Ipam()
    ipam.request_pool("a", PoolConfig(subnet="10.213.96.0/30"))
    assert ipam.request_address("a") == IPv4Address("10.213.96.2")
    with pytest.raises(NoAvailableAddresses) as err:
        ipam.request_address("a")
    assert isinstance(err.value, Unavailable)


def test_aux_addresses_are_reserved() -> None:
    ipam = Ipam()
    ipam.request_pool("a", PoolConfig(subnet="10.213.96.0/24", aux_addresses={"x": "10.213.96.2"}))
    assert ipam.request_address("a") == IPv4Address("10.213.96.3")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (PoolConfig(subnet="10.213.1.5/24"), "invalid network config:\ninvalid subnet 10.213.1.5/24: it should be 10.213.1.0/24"),
        (PoolConfig(subnet="nope"), "invalid network config:\ninvalid subnet nope: invalid CIDR block notation"),
        (PoolConfig(subnet="10.213.1.0/24", gateway="10.213.2.1"),
         "invalid network config:\ninvalid gateway 10.213.2.1: parent subnet 10.213.1.0/24 doesn't contain this address"),
        (PoolConfig(subnet="10.213.1.0/24", ip_range="10.213.2.0/25"),
         "invalid network config:\ninvalid ip-range 10.213.2.0/25: parent subnet 10.213.1.0/24 doesn't contain ip-range"),
        (PoolConfig(subnet="10.213.1.0/24", gateway="x"), "invalid network config:\ninvalid gateway x: invalid address"),
    ],
)
def test_validate_ipam_messages(cfg: PoolConfig, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_ipam([cfg])
    assert str(err.value) == message


def test_validate_ipam_joins_several_errors() -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_ipam([PoolConfig(subnet="10.213.1.0/24", gateway="10.213.2.1", ip_range="10.213.3.0/16")])
    text = str(err.value)
    assert text.startswith("invalid network config:\n* invalid ip-range 10.213.3.0/16: CIDR block is bigger")
    assert text.count("\n* ") == 3


def test_validate_ipam_accepts_good_config_and_skips_v6_when_disabled() -> None:
    validate_ipam([PoolConfig(subnet="10.213.1.0/24", gateway="10.213.1.1", ip_range="10.213.1.128/25")])
    validate_ipam([PoolConfig(subnet="fd00::1/64")])


def test_parse_proc_route_and_nameservers(tmp_path: Path) -> None:
    route = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert parse_proc_route(route) == [IPv4Network("172.17.0.0/16"), IPv4Network("192.0.2.0/24")]
    assert nameserver_networks("nameserver 10.255.255.53\nnameserver ::1\nsearch x\n") == [
        IPv4Network("10.255.255.53/32")
    ]
    (tmp_path / "route").write_text(route)
    (tmp_path / "resolv").write_text("nameserver 10.1.2.3\n")
    assert list(reserved_networks(tmp_path / "route", tmp_path / "resolv"))[-1] == IPv4Network("10.1.2.3/32")


def test_real_host_routes_are_reserved() -> None:
    # whatever this host routes must never come out of the dynamic pool
    ipam = Ipam(reserved=reserved_networks)
    host = list(reserved_networks())
    for i in range(5):
        subnet = ipam.request_pool(f"n{i}").subnet
        assert not any(subnet.overlaps(r) for r in host)
