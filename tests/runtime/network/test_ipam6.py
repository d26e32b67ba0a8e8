from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from runtime.errors import InvalidParameter
from runtime.network.ipam import AddressInUse, AddressOutOfRange
from runtime.network.ipam6 import Ipam6, host_has_ipv6, random_ula


def test_pool_gateway_and_sequential_addresses() -> None:
    ipam = Ipam6()
    pool = ipam.request_pool("n1", "fd42:1::/64")
    assert pool.gateway == IPv6Address("fd42:1::1") and pool.gateway_cidr == "fd42:1::1/64"
    assert [str(ipam.request_address("n1")) for _ in range(2)] == ["fd42:1::2", "fd42:1::3"]
    assert str(ipam.request_address("n1", "fd42:1::f00d")) == "fd42:1::f00d"
    with pytest.raises(AddressInUse):
        ipam.request_address("n1", "fd42:1::f00d")
    with pytest.raises(AddressOutOfRange):
        ipam.request_address("n1", "fd42:2::1")
    ipam.release_address("n1", "fd42:1::f00d")
    assert str(ipam.request_address("n1", "fd42:1::f00d")) == "fd42:1::f00d"


def test_given_gateway_overlap_and_release() -> None:
    ipam = Ipam6()
    assert str(ipam.request_pool("n1", "2001:389::/64", "2001:389::ffff").gateway) == "2001:389::ffff"
    with pytest.raises(InvalidParameter, match="overlaps"):
        ipam.request_pool("n2", "2001:389::/48")
    with pytest.raises(AddressOutOfRange):
        ipam.request_pool("n3", "fd42:3::/64", "fd42:4::1")
    ipam.release_pool("n1")
    assert not ipam.has_pool("n1")
    ipam.request_pool("n2", "2001:389::/48")


def test_random_ula_and_host_detection(tmp_path: Path) -> None:
    net = IPv6Network(random_ula())
    assert net.prefixlen == 64 and net.subnet_of(IPv6Network("fd00::/8"))
    assert host_has_ipv6(tmp_path) is False
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "if_inet6").write_text("")
    conf = tmp_path / "sys/net/ipv6/conf/all"
    conf.mkdir(parents=True)
    (conf / "disable_ipv6").write_text("1\n")
    assert host_has_ipv6(tmp_path) is False
    (conf / "disable_ipv6").write_text("0\n")
    assert host_has_ipv6(tmp_path) is True
