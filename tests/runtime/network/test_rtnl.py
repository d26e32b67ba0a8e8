"""runtime.network.rtnl against the kernel: reads of the host namespace, and its errors."""

from __future__ import annotations

import errno
import socket

import pytest

from runtime.network.rtnl import IPRoute, NetlinkError, _attr, _attrs


def test_attributes_are_padded_and_read_back() -> None:
    raw = _attr(3, b"eth0\0") + _attr(4, b"\x01\x02\x03\x04")
    assert len(raw) == 8 + 4 + 8  # "eth0\0" padded to 8
    assert [(k, bytes(v)) for k, v in _attrs(raw)] == [(3, b"eth0\0"), (4, b"\x01\x02\x03\x04")]


def test_loopback_is_found_with_its_address() -> None:
    with IPRoute() as ipr:
        assert ipr.link_lookup(ifname="lo") == [1]
        assert ipr.link_lookup(ifname="pydy-no-such0") == []
        link = ipr.get_links(1)[0]
        assert link.get_attr("IFLA_IFNAME") == "lo"
        assert link["flags"] & 1  # up
        assert "lo" in [m.get_attr("IFLA_IFNAME") for m in ipr.get_links()]
        addrs = ipr.get_addr(index=1, family=socket.AF_INET)
        assert ("127.0.0.1", 8) in [(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in addrs]


def test_a_refusal_carries_the_errno() -> None:
    with IPRoute() as ipr, pytest.raises(NetlinkError) as caught:
        ipr.link("del", index=0x7FFFFFF0)
    assert caught.value.code == errno.ENODEV
    assert caught.value.args[0] == errno.ENODEV and caught.value.args[1]
