"""What the host's own network already uses, so IPAM never hands out a clashing subnet.

dockerd excludes on-link routes and the host's nameservers when it picks a default
subnet; we exclude every non-default IPv4 route (on-link or via a gateway) and every
nameserver, read from /proc and /etc without a netlink round trip.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Network
from pathlib import Path

PROC_ROUTE = Path("/proc/net/route")
RESOLV_CONF = Path("/etc/resolv.conf")


def _le_ipv4(hex_text: str) -> str:
    return socket.inet_ntoa(struct.pack("<I", int(hex_text, 16)))


def parse_proc_route(text: str) -> list[IPv4Network]:
    """Destinations of the non-default routes listed in /proc/net/route format."""
    networks: list[IPv4Network] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = _le_ipv4(fields[1]), _le_ipv4(fields[7])
        if mask == "0.0.0.0":
            continue
        networks.append(IPv4Network(f"{dest}/{mask}", strict=False))
    return networks


def nameserver_networks(resolv_conf_text: str) -> list[IPv4Network]:
    result: list[IPv4Network] = []
    for line in resolv_conf_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                addr = ipaddress.ip_address(fields[1])
            except ValueError:
                continue
            if addr.version == 4:
                result.append(IPv4Network(f"{addr}/32"))
    return result


def reserved_networks(
    route_path: Path = PROC_ROUTE, resolv_path: Path = RESOLV_CONF
) -> Iterable[IPv4Network]:
    """Routes plus nameservers of the host (read fresh on every call)."""
    reserved: list[IPv4Network] = []
    try:
        reserved.extend(parse_proc_route(route_path.read_text()))
    except OSError:
        pass
    try:
        reserved.extend(nameserver_networks(resolv_path.read_text()))
    except OSError:
        pass
    return reserved


__all__ = ["parse_proc_route", "nameserver_networks", "reserved_networks"]
