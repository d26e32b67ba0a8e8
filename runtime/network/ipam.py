"""IPv4 address management for bridge networks, with dockerd's default IPAM semantics.

A *pool* is one network's subnet (optionally narrowed by an ``--ip-range`` sub-pool);
addresses are handed out first-free from the sub-pool (or the whole subnet), never the
network or broadcast address. Subnets chosen dynamically come from dockerd's default
local pools (172.17-31.x.x/16, then 192.168.x.x/20) and skip both the pools already
allocated here and every prefix the host already uses (``reserved``: its routes and
nameservers), so a new network never shadows a route of the host.

Nothing here touches the kernel or the disk: the network service persists what it needs
(network records, endpoint records) and rebuilds an :class:`Ipam` from them at start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from runtime.errors import Forbidden, InvalidParameter, NotFound, Unavailable

# (base, target prefix length) as in dockerd's ipamutils local-scope defaults
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    ("172.17.0.0/16", 16),
    ("172.18.0.0/16", 16),
    ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16),
    ("172.24.0.0/14", 16),
    ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
)

_AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

POOL_OVERLAP = "Pool overlaps with other one on this address space"
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
ADDRESS_IN_USE = "Address already in use"


class PoolOverlap(Forbidden):
    def __init__(self) -> None:
        super().__init__(f"invalid pool request: {POOL_OVERLAP}")


class AddressInUse(Forbidden):
    def __init__(self) -> None:
        super().__init__(ADDRESS_IN_USE)


class NoAvailableAddresses(Unavailable):
    """The pool is full; the service rewords it with the network's name and ID."""

    def __init__(self) -> None:
        super().__init__("no available addresses on this pool")


class AddressOutOfRange(InvalidParameter):
    def __init__(self) -> None:
        super().__init__("requested address is out of range")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """One ``IPAM.Config`` entry as the user gave it (strings, possibly empty)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pool:
    """An allocated pool: what the network's bridge and endpoints are configured from."""

    subnet: IPv4Network
    ip_range: IPv4Network | None
    gateway: IPv4Address | None
    user_subnet: bool

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.subnet.prefixlen}" if self.gateway else ""


def validate_ipam(configs: Iterable[PoolConfig], enable_ipv6: bool = False) -> None:
    """dockerd's ``ValidateIPAM``: every problem, joined, as one InvalidParameter."""
    errors: list[str] = []
    for cfg in configs:
        try:
            iface = ipaddress.ip_interface(cfg.subnet)
            if "/" not in cfg.subnet:
                raise ValueError
        except ValueError:
            errors.append(f"invalid subnet {cfg.subnet}: invalid CIDR block notation")
            continue
        family = "IPv4" if iface.version == 4 else "IPv6"
        if family == "IPv6" and not enable_ipv6:
            continue
        subnet = iface.network
        if iface.ip != subnet.network_address:
            errors.append(f"invalid subnet {iface}: it should be {subnet}")
        errors.extend(_ip_range_errors(cfg.ip_range, subnet, family))
        if problem := _address_error(cfg.gateway, subnet, family):
            errors.append(f"invalid gateway {cfg.gateway}: {problem}")
        for name, aux in cfg.aux_addresses.items():
            if problem := _address_error(aux, subnet, family):
                errors.append(f"invalid auxiliary address {name}: {problem}")
    if errors:
        joined = errors[0] if len(errors) == 1 else "* " + "\n* ".join(errors)
        raise InvalidParameter(f"invalid network config:\n{joined}")


def _ip_range_errors(ip_range: str, subnet: _AnyNetwork, family: str) -> list[str]:
    if ip_range == "":
        return []
    try:
        iface = ipaddress.ip_interface(ip_range)
        if "/" not in ip_range:
            raise ValueError
    except ValueError:
        return [f"invalid ip-range {ip_range}: invalid CIDR block notation"]
    if (iface.version == 4) != (family == "IPv4"):
        return [f"invalid ip-range {ip_range}: parent subnet is an {family} block"]
    errors = []
    prefix = iface.network
    if prefix.prefixlen < subnet.prefixlen:
        errors.append(f"invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {subnet}")
    if iface.ip != prefix.network_address:
        errors.append(f"invalid ip-range {iface}: it should be {prefix}")
    if not subnet.overlaps(prefix):  # type: ignore[arg-type,unused-ignore]
        errors.append(f"invalid ip-range {ip_range}: parent subnet {subnet} doesn't contain ip-range")
    return errors


def _address_error(address: str, subnet: _AnyNetwork, family: str) -> str | None:
    if address == "":
        return None
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return "invalid address"
    if (addr.version == 4) != (family == "IPv4"):
        return f"parent subnet is an {family} block"
    if addr not in subnet:
        return f"parent subnet {subnet} doesn't contain this address"
    return None


def default_candidates(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> Iterator[IPv4Network]:
    """Every subnet of the default pools, in dockerd's order."""
    for base, size in pools:
        yield from IPv4Network(base).subnets(new_prefix=size)


@dataclass(slots=True)
class _PoolState:
    pool: Pool
    used: set[int] = field(default_factory=set)
    children: set[IPv4Network | None] = field(default_factory=set)


class Ipam:
    """Pools keyed by network ID, each with its set of allocated addresses.

    ``reserved`` is called for every dynamic allocation and returns the prefixes the host
    uses (see :func:`runtime.network.hostnet.reserved_networks`).
    """

    def __init__(
        self,
        reserved: Callable[[], Iterable[IPv4Network]] = lambda: (),
        candidates: Callable[[], Iterable[IPv4Network]] = default_candidates,
    ) -> None:
        self._reserved = reserved
        self._candidates = candidates
        self._pools: dict[str, _PoolState] = {}

    # -- pools -------------------------------------------------------------------------

    def request_pool(
        self, network_id: str, config: PoolConfig | None = None, *, gateway_ip: str = ""
    ) -> Pool:
        """Allocate the pool of a new network and reserve its gateway.

        ``config`` empty = pick a free default subnet. ``gateway_ip`` (the default bridge's
        ``--bip`` address) overrides the first-free gateway."""
        if network_id in self._pools:
            raise InvalidParameter(f"pool for network {network_id} already exists")
        config = config or PoolConfig()
        if config.subnet == "":
            if config.ip_range:
                raise InvalidParameter("invalid address subpool")
            subnet = self._pick_subnet()
            sub: IPv4Network | None = None
            user = False
        else:
            subnet = IPv4Network(config.subnet, strict=False)
            sub = IPv4Network(config.ip_range, strict=False) if config.ip_range else None
            if sub is not None and sub.prefixlen < subnet.prefixlen:
                sub = subnet
            self._check_static(subnet, sub)
            user = True
        state = _PoolState(Pool(subnet, sub, None, user))
        state.children.add(sub)
        self._reserve_edges(state)
        self._pools[network_id] = state
        gateway_text = gateway_ip or config.gateway
        try:
            gateway = self._take(state, IPv4Address(gateway_text) if gateway_text else None)
            for aux in config.aux_addresses.values():
                addr = IPv4Address(aux)
                if addr in subnet:
                    state.used.add(int(addr))
        except BaseException:
            del self._pools[network_id]
            raise
        state.pool = Pool(subnet, sub, gateway, user)
        return state.pool

    def release_pool(self, network_id: str) -> None:
        self._pools.pop(network_id, None)

    def pool(self, network_id: str) -> Pool:
        try:
            return self._pools[network_id].pool
        except KeyError:
            raise NotFound(f"cannot find address pool for network {network_id}") from None

    def pools(self) -> Mapping[str, Pool]:
        return {nid: st.pool for nid, st in self._pools.items()}

    def _check_static(self, subnet: IPv4Network, sub: IPv4Network | None) -> None:
        # dockerd checks a subnet given with an ip-range only for an exact duplicate
        # (moby#46756); without one, against every allocated pool
        for state in self._pools.values():
            other = state.pool.subnet
            if other == subnet and (sub is None or sub in state.children or None in state.children):
                raise PoolOverlap()
            if sub is None and other.overlaps(subnet):
                raise PoolOverlap()

    def _pick_subnet(self) -> IPv4Network:
        taken = [st.pool.subnet for st in self._pools.values()]
        taken.extend(self._reserved())
        for candidate in self._candidates():
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
        raise InvalidParameter(NO_MORE_SUBNETS)

    @staticmethod
    def _reserve_edges(state: _PoolState) -> None:
        subnet = state.pool.subnet
        if subnet.prefixlen < 31:
            state.used.add(int(subnet.network_address))
            state.used.add(int(subnet.broadcast_address))

    # -- addresses ---------------------------------------------------------------------

    def request_address(self, network_id: str, preferred: str = "") -> IPv4Address:
        """Allocate ``preferred`` (must be free and inside the subnet) or the first free
        address of the pool's range."""
        state = self._pools.get(network_id)
        if state is None:
            raise NotFound(f"cannot find address pool for network {network_id}")
        return self._take(state, IPv4Address(preferred) if preferred else None)

    def release_address(self, network_id: str, address: IPv4Address | str) -> None:
        state = self._pools.get(network_id)
        if state is None:
            return
        addr = IPv4Address(address)
        if addr == state.pool.gateway:
            return
        state.used.discard(int(addr))

    def allocated(self, network_id: str) -> set[IPv4Address]:
        state = self._pools.get(network_id)
        if state is None:
            return set()
        subnet = state.pool.subnet
        edges = {int(subnet.network_address), int(subnet.broadcast_address)} if subnet.prefixlen < 31 else set()
        return {IPv4Address(a) for a in state.used - edges}

    @staticmethod
    def _take(state: _PoolState, preferred: IPv4Address | None) -> IPv4Address:
        pool = state.pool
        if preferred is not None:
            if preferred not in pool.subnet:
                raise AddressOutOfRange()
            if int(preferred) in state.used:
                raise AddressInUse()
            state.used.add(int(preferred))
            return preferred
        scope = pool.ip_range or pool.subnet
        first, last = int(scope.network_address), int(scope.broadcast_address)
        for value in range(first, last + 1):
            if value not in state.used:
                state.used.add(value)
                return IPv4Address(value)
        raise NoAvailableAddresses()


__all__ = [
    "DEFAULT_POOLS", "POOL_OVERLAP", "NO_MORE_SUBNETS", "ADDRESS_IN_USE", "PoolOverlap",
    "AddressInUse", "NoAvailableAddresses", "AddressOutOfRange", "PoolConfig", "Pool",
    "validate_ipam", "default_candidates", "Ipam",
]
