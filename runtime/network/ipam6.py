"""IPv6 address management for bridge networks with ``EnableIPv6``: one subnet per
network, the gateway (first address unless given) and sequential endpoint addresses."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from runtime.errors import InvalidParameter
from runtime.network.ipam import AddressInUse, AddressOutOfRange, NoAvailableAddresses

ERR_NO_IPV6 = "IPv6 is not available on this host: the kernel has no IPv6 support (or it is disabled)"


def host_has_ipv6(proc: Path = Path("/proc")) -> bool:
    """Whether the kernel has IPv6 (``/proc/net/if_inet6`` exists and it is not disabled)."""
    if not (proc / "net" / "if_inet6").exists():
        return False
    try:
        return (proc / "sys/net/ipv6/conf/all/disable_ipv6").read_text().strip() != "1"
    except OSError:
        return True


def random_ula() -> str:
    """A /64 in fd00::/8 with a random 40-bit global ID (RFC 4193)."""
    gid = secrets.token_bytes(5)
    return str(IPv6Network((b"\xfd" + gid + b"\x00\x00" + b"\x00" * 8, 64)))


@dataclass(slots=True)
class Pool6:
    subnet: IPv6Network
    gateway: IPv6Address
    used: set[IPv6Address] = field(default_factory=set)
    last: int = 1

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.subnet.prefixlen}"


class Ipam6:
    """Per-network IPv6 pools (no overlap checks between networks beyond equality)."""

    def __init__(self) -> None:
        self._pools: dict[str, Pool6] = {}

    def request_pool(self, network_id: str, subnet: str, gateway: str = "") -> Pool6:
        net = IPv6Network(subnet, strict=False)
        for other in self._pools.values():
            if other.subnet.overlaps(net):
                raise InvalidParameter("invalid pool request: Pool overlaps with other one on this address space")
        gw = IPv6Address(gateway) if gateway else net.network_address + 1
        if gw not in net:
            raise AddressOutOfRange()
        pool = Pool6(net, gw, {net.network_address, gw})
        self._pools[network_id] = pool
        return pool

    def release_pool(self, network_id: str) -> None:
        self._pools.pop(network_id, None)

    def has_pool(self, network_id: str) -> bool:
        return network_id in self._pools

    def request_address(self, network_id: str, preferred: str = "") -> IPv6Address:
        pool = self._pools[network_id]
        if preferred:
            addr = IPv6Address(preferred)
            if addr not in pool.subnet:
                raise AddressOutOfRange()
            if addr in pool.used:
                raise AddressInUse()
            pool.used.add(addr)
            return addr
        size = pool.subnet.num_addresses
        for step in range(1, min(size, 1 << 16)):
            offset = (pool.last + step) % size
            addr = pool.subnet.network_address + offset
            if addr not in pool.used:
                pool.used.add(addr)
                pool.last = offset
                return addr
        raise NoAvailableAddresses()

    def release_address(self, network_id: str, address: str) -> None:
        pool = self._pools.get(network_id)
        if pool is not None and address:
            pool.used.discard(IPv6Address(address))


__all__ = ["ERR_NO_IPV6", "host_has_ipv6", "random_ula", "Pool6", "Ipam6"]
