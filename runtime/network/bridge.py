"""Linux bridges and veth pairs through netlink (pyroute2), the way dockerd's bridge
driver lays them out.

Every function here is synchronous and short; callers run them in a worker thread
(``asyncio.to_thread`` for the host side, :func:`runtime.network.netns.run_in_netns` for
work inside a container's namespace). Each call opens its own netlink socket (well
under a millisecond), so nothing is shared between threads or namespaces.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import SystemError_
from runtime.network.model import BridgeClaim
from runtime.network.rtnl import IPRoute, NetlinkError

VETH_PREFIX = "veth"
IFA_F_NODAD = 0x02
RTPROT_BOOT = 3  # what `ip route add` uses; shows as a plain route in `ip route`


@contextmanager
def _iproute() -> Iterator[IPRoute]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def mac_for_ipv4(address: ipaddress.IPv4Address | str) -> str:
    """A locally administered MAC ``02:42:`` + the four address bytes (dockerd <= 25)."""
    packed = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def random_veth_name() -> str:
    """``veth`` + 7 hex digits, as dockerd names the host side of a veth pair."""
    return VETH_PREFIX + secrets.token_hex(4)[:7]


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_exists(name: str) -> bool:
    with _iproute() as ipr:
        return _index(ipr, name) is not None


def delete_link(name: str) -> bool:
    """Delete an interface by name; False when it did not exist."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise
        return True


@dataclass(frozen=True, slots=True)
class BridgeState:
    name: str
    index: int
    addresses: tuple[str, ...]  # "a.b.c.d/len"
    up: bool


def bridge_state(name: str) -> BridgeState | None:
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            return None
        link = ipr.get_links(index)[0]
        addrs = tuple(
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index, family=2)
        )
        return BridgeState(name, index, addrs, bool(link["flags"] & 1))


def link_kind(ipr: IPRoute, index: int) -> str:
    """The rtnetlink kind of an interface ("bridge", "veth"...; "" for a physical one)."""
    info = ipr.get_links(index)[0].get_attr("IFLA_LINKINFO")
    return str(info.get_attr("IFLA_INFO_KIND") or "") if info is not None else ""


def _ipv4_addresses(ipr: IPRoute, index: int) -> list[str]:
    return [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index, family=2)]


def _add_ipv4(ipr: IPRoute, index: int, cidr: str) -> None:
    iface = ipaddress.IPv4Interface(cidr)
    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
             broadcast=str(iface.network.broadcast_address))


def _del_ipv4(ipr: IPRoute, index: int, cidr: str) -> None:
    iface = ipaddress.IPv4Interface(cidr)
    ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)


def claim_bridge(name: str, gateway_cidr: str, mtu: int = 1500, earlier: BridgeClaim | None = None) -> BridgeClaim:
    """Make bridge ``name`` carry ``gateway_cidr`` and be up, creating it if no interface
    has that name, and say what was done (see :class:`BridgeClaim`).

    An existing interface that is not a bridge is refused untouched, with dockerd's text.
    An existing bridge is adopted by dockerd's rule (``setupBridgeIPv4``): of its IPv4
    addresses the one inside the network's subnet (else the first) is replaced by the
    gateway unless it already is the gateway; what was replaced is recorded to be put
    back. ``earlier``: the claim a previous run of the daemon made on it."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", address=_random_mac(), mtu=mtu)
            except NetlinkError as exc:
                raise SystemError_(f"failed to create bridge {name} via netlink: {exc.args[1] if len(exc.args) > 1 else exc}") from exc
            index = _index(ipr, name)
            assert index is not None
            try:
                if gateway_cidr:
                    _add_ipv4(ipr, index, gateway_cidr)
                ipr.link("set", index=index, state="up")
            except BaseException:
                ipr.link("del", index=index)
                raise
            return BridgeClaim(created=True)
        if link_kind(ipr, index) != "bridge":
            raise SystemError_(f"existing interface {name} is not a bridge")
        added, displaced = "", tuple[str, ...]()
        if gateway_cidr:
            wanted = ipaddress.IPv4Interface(gateway_cidr)
            have = _ipv4_addresses(ipr, index)
            if not any(ipaddress.IPv4Interface(a) == wanted for a in have):
                inside = [a for a in have if ipaddress.IPv4Interface(a).ip in wanted.network]
                selected = (inside or have)[:1]
                for cidr in selected:
                    _del_ipv4(ipr, index, cidr)
                _add_ipv4(ipr, index, gateway_cidr)
                added, displaced = gateway_cidr, tuple(selected)
        was_up = bool(ipr.get_links(index)[0]["flags"] & 1)
        if not was_up:
            ipr.link("set", index=index, state="up")
        return BridgeClaim(created=False, added=added, displaced=displaced, brought_up=not was_up).merged_with(earlier)


def release_bridge(name: str, claim: BridgeClaim) -> None:
    """Undo :func:`claim_bridge`: delete the bridge if pydockerd created it, else leave
    the interface as it was found. Never touches an interface that is not a bridge."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None or link_kind(ipr, index) != "bridge":
            return
        if claim.created:
            with _ignoring(errno.ENODEV):
                ipr.link("del", index=index)
            return
        if claim.added:
            with _ignoring(errno.EADDRNOTAVAIL):
                _del_ipv4(ipr, index, claim.added)
        for cidr in claim.displaced:
            with _ignoring(errno.EEXIST):
                _add_ipv4(ipr, index, cidr)
        if claim.added6:
            iface6 = ipaddress.IPv6Interface(claim.added6)
            with _ignoring(errno.EADDRNOTAVAIL):
                ipr.addr("del", index=index, address=str(iface6.ip), prefixlen=iface6.network.prefixlen,
                         family=socket.AF_INET6)
        if claim.enabled_ipv6:
            with contextlib.suppress(OSError):
                write_sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "1")
        if claim.brought_up:
            ipr.link("set", index=index, state="down")


def delete_veth(name: str, bridge: str) -> bool:
    """Delete the host side of one of pydockerd's veth pairs: only an interface of that
    name that is a veth plugged into ``bridge``; False when there is none."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        bridge_index = _index(ipr, bridge)
        if index is None or bridge_index is None or link_kind(ipr, index) != "veth":
            return False
        if ipr.get_links(index)[0].get_attr("IFLA_MASTER") != bridge_index:
            return False
        with _ignoring(errno.ENODEV):
            ipr.link("del", index=index)
        return True


@contextmanager
def _ignoring(code: int) -> Iterator[None]:
    try:
        yield
    except NetlinkError as exc:
        if exc.code != code:
            raise


def _random_mac() -> str:
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def links_with_master(bridge: str) -> list[str]:
    with _iproute() as ipr:
        index = _index(ipr, bridge)
        if index is None:
            return []
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == index]


@dataclass(frozen=True, slots=True)
class VethPlan:
    """One endpoint's interface: host side on ``bridge``, peer ``peer_name`` in the netns."""

    host_name: str
    peer_name: str
    bridge: str
    mac: str
    mtu: int
    address_cidr: str  # "10.213.0.2/24"
    gateway: str  # "" = no default route through this endpoint
    extra_cidrs: tuple[str, ...] = ()  # link-local addresses ("169.254.8.8/16")
    address6_cidr: str = ""  # IPv6 networks: "fd42::2/64"
    gateway6: str = ""


def create_veth(plan: VethPlan, netns_fd: int) -> None:
    """Create the pair with its peer born inside the namespace of ``netns_fd`` (so the
    peer may be called ``eth0`` at once), plug the host side into the bridge, bring it up."""
    create_veths([plan], netns_fd)


def create_veths(plans: list[VethPlan], netns_fd: int) -> None:
    """:func:`create_veth` for several endpoints over one netlink socket; all or nothing."""
    made: list[str] = []
    with _iproute() as ipr:
        try:
            for plan in plans:
                _create_veth(ipr, plan, netns_fd)
                made.append(plan.host_name)
        except BaseException:
            for name in made:
                index = _index(ipr, name)
                if index is not None:
                    ipr.link("del", index=index)
            raise


def _create_veth(ipr: IPRoute, plan: VethPlan, netns_fd: int) -> None:
    bridge_index = _index(ipr, plan.bridge)
    if bridge_index is None:
        raise SystemError_(f"bridge {plan.bridge} not found")
    try:
        ipr.link(
            "add", ifname=plan.host_name, kind="veth", mtu=plan.mtu,
            peer={"ifname": plan.peer_name, "net_ns_fd": netns_fd, "address": plan.mac, "mtu": plan.mtu},
        )
    except NetlinkError as exc:
        raise SystemError_(
            f"failed to add the host ({plan.host_name}) <=> sandbox ({plan.peer_name}) pair interfaces: {exc}"
        ) from exc
    index = _index(ipr, plan.host_name)
    assert index is not None
    try:
        ipr.link("set", index=index, master=bridge_index)
        ipr.link("set", index=index, state="up")
    except NetlinkError as exc:
        ipr.link("del", index=index)
        raise SystemError_(
            f"adding interface {plan.host_name} to bridge {plan.bridge} failed: {exc}"
        ) from exc


def write_sysctl(name: str, value: str) -> None:
    """Write a sysctl of the *current thread's* network namespace (``net.*``) or the host."""
    path = Path("/proc/sys") / name.replace(".", "/")
    with open(path, "w") as f:
        f.write(value)


def configure_peer(plan: VethPlan, disable_ipv6: bool = True) -> None:
    """Inside the container's namespace: address, MTU, up, loopback up, default route."""
    configure_peers([plan], disable_ipv6)


def configure_peers(plans: list[VethPlan], disable_ipv6: bool = True) -> bool:
    """:func:`configure_peer` for several endpoints over one netlink socket; returns
    whether ``lo`` has ``::1`` (see :func:`loopback_has_ipv6`)."""
    with _iproute() as ipr:
        for plan in plans:
            _configure_peer(ipr, plan, disable_ipv6)
        lo = _index(ipr, "lo")
        return lo is not None and bool(ipr.get_addr(index=lo, family=10))


def _configure_peer(ipr: IPRoute, plan: VethPlan, disable_ipv6: bool) -> None:
    index = _index(ipr, plan.peer_name)
    if index is None:
        raise SystemError_(f"interface {plan.peer_name} not found in the container's namespace")
    if disable_ipv6 or plan.address6_cidr:
        try:
            write_sysctl(f"net.ipv6.conf.{plan.peer_name}.disable_ipv6", "0" if plan.address6_cidr else "1")
        except OSError:
            pass  # kernel without IPv6
    iface = ipaddress.IPv4Interface(plan.address_cidr)
    ipr.addr(
        "add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
        broadcast=str(iface.network.broadcast_address),
    )
    if plan.address6_cidr:
        iface6 = ipaddress.IPv6Interface(plan.address6_cidr)
        # no duplicate address detection: the address is usable at once (as dockerd does)
        ipr.addr("add", index=index, address=str(iface6.ip), prefixlen=iface6.network.prefixlen,
                 family=socket.AF_INET6, flags=IFA_F_NODAD)
    for cidr in plan.extra_cidrs:
        extra = ipaddress.ip_interface(cidr)
        if extra.version == 4 or not disable_ipv6 or plan.address6_cidr:
            ipr.addr("add", index=index, address=str(extra.ip), prefixlen=extra.network.prefixlen)
    ipr.link("set", index=index, state="up")
    lo = _index(ipr, "lo")
    if lo is not None:
        ipr.link("set", index=lo, state="up")
    if plan.gateway:
        ipr.route("replace", dst="0.0.0.0/0", gateway=plan.gateway, oif=index, proto=RTPROT_BOOT)
    if plan.gateway6:
        ipr.route("replace", dst="::/0", gateway=plan.gateway6, oif=index, proto=RTPROT_BOOT,
                  family=socket.AF_INET6)


def add_bridge_address6(name: str, cidr: str) -> tuple[bool, bool]:
    """Give a bridge its IPv6 gateway address (IPv6 networks), enabling IPv6 on it.
    Returns (IPv6 had to be enabled, the address had to be added)."""
    sysctl = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    try:
        enabled = sysctl.read_text().strip() == "1"
        if enabled:
            write_sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "0")
    except OSError as exc:
        raise SystemError_(f"cannot enable IPv6 on {name}: {exc}") from exc
    iface = ipaddress.IPv6Interface(cidr)
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            raise SystemError_(f"bridge {name} not found")
        if any(a.get_attr("IFA_ADDRESS") == str(iface.ip) for a in ipr.get_addr(index=index, family=socket.AF_INET6)):
            return enabled, False
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                 family=socket.AF_INET6, flags=IFA_F_NODAD)
    return enabled, True


def remove_peer(peer_name: str) -> None:
    """Inside the container's namespace: delete an interface (its host twin goes too)."""
    with _iproute() as ipr:
        index = _index(ipr, peer_name)
        if index is not None:
            ipr.link("del", index=index)


def set_default_route(gateway: str, device: str) -> None:
    with _iproute() as ipr:
        index = _index(ipr, device)
        if index is not None:
            ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index, proto=RTPROT_BOOT)


def netns_interfaces() -> list[str]:
    with _iproute() as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]


def loopback_has_ipv6() -> bool:
    """Whether ``lo`` of the current namespace carries ``::1`` (dockerd's IPv6 test for
    /etc/hosts)."""
    with _iproute() as ipr:
        index = _index(ipr, "lo")
        if index is None:
            return False
        return bool(ipr.get_addr(index=index, family=10))


def enable_ip_forward() -> None:
    """dockerd sets net.ipv4.ip_forward=1 when it manages bridges with iptables."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    try:
        if path.read_text().strip() != "1":
            path.write_text("1")
    except OSError:
        pass


__all__ = [
    "mac_for_ipv4", "random_veth_name", "link_exists", "delete_link", "BridgeState",
    "bridge_state", "link_kind", "claim_bridge", "release_bridge", "delete_veth", "links_with_master", "VethPlan",
    "create_veth", "create_veths", "write_sysctl", "add_bridge_address6", "configure_peer", "configure_peers",
    "remove_peer", "set_default_route", "netns_interfaces", "loopback_has_ipv6", "enable_ip_forward",
]
