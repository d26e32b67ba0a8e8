"""Pure helpers of the network service: which networks a container joins, DNS names,
the ``NetworkSettings`` shapes, and name resolution over the live sandboxes."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runtime.errors import InvalidParameter
from runtime.network.contract import DEFAULT_MODES, PRIMARY_LEFT, EndpointConfig, SandboxRequest
from runtime.network.model import Endpoint, Network, Sandbox

ERR_ALIAS = "network-scoped alias is supported only for containers in user defined networks"
ERR_IP_DEFAULT = "user specified IP address is supported on user defined networks only"
ERR_IP_NO_SUBNET = "user specified IP address is supported only when connecting to networks with user configured subnets"
ERR_NO_NETWORK = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
ERR_SHARED = "container sharing network namespace with another container or host cannot be connected to any other network"
ERR_CONNECT_HOST = "cannot connect container to host network - container must be created in host network mode"
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")
ERR_DISCONNECT_HOST = "cannot disconnect container from host network - container was created in host network mode"


def mode_network(network_mode: str) -> str | None:
    """The network a ``NetworkMode`` names (None for ``container:<id>``)."""
    if network_mode in DEFAULT_MODES:
        return "bridge"
    if network_mode.startswith("container:"):
        return None
    return network_mode


def requested(request: SandboxRequest) -> list[tuple[str, EndpointConfig]]:
    """(network reference, config) the container joins: the ``NetworkMode`` network
    first (with its EndpointsConfig entry, looked up by the same reference or
    ``default``/``bridge``), then the other EndpointsConfig entries sorted by name.
    After a disconnect from the ``NetworkMode`` network (:data:`PRIMARY_LEFT` in the
    map) that network is joined only if an entry names it."""
    primary = mode_network(request.network_mode)
    if primary is None:
        return []
    endpoints = dict(request.endpoints)
    left = endpoints.pop(PRIMARY_LEFT, None) is not None
    aliases = {primary} | ({"default", "bridge", ""} if primary == "bridge" else set())
    config: EndpointConfig | None = None
    for key in list(endpoints):
        if key in aliases:
            config = endpoints.pop(key)
    head = [] if left and config is None else [(primary, config or EndpointConfig())]
    return head + sorted(endpoints.items())


def dns_names(request: SandboxRequest, config: EndpointConfig) -> list[str]:
    """dockerd's DNSNames: name, aliases, short ID, hostname (deduplicated)."""
    names = [request.name, *config.aliases, request.container_id[:12], request.hostname]
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


def link_local_cidrs(config: EndpointConfig) -> tuple[str, ...]:
    """The ``LinkLocalIPs`` as interface addresses (libnetwork's /16 and /64 masks)."""
    return tuple(f"{ip}/{16 if ipaddress.ip_address(ip).version == 4 else 64}" for ip in config.link_local_ips)


def check_endpoint(network: Network, config: EndpointConfig) -> None:
    """dockerd's endpoint-settings validation for one network."""
    for ip in config.link_local_ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidParameter(f"invalid link-local IP address: {ip}") from None
    if config.mac_address and not _MAC.match(config.mac_address):
        raise InvalidParameter(f"invalid MAC address {config.mac_address}")
    if not network.user_defined:
        if config.aliases:
            raise InvalidParameter(ERR_ALIAS)
        if config.ipv4_address or config.ipv6_address:
            raise InvalidParameter(ERR_IP_DEFAULT)
        return
    if config.ipv4_address:
        if not network.user_subnet:
            raise InvalidParameter(ERR_IP_NO_SUBNET)
        try:
            addr = ipaddress.ip_address(config.ipv4_address)
        except ValueError:
            raise InvalidParameter(f"invalid IPv4 address: {config.ipv4_address}") from None
        pools = [c.ip_range or c.subnet for c in network.ipam_config if c.subnet]
        if not any(addr in ipaddress.ip_network(p, strict=False) for p in pools):
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {config.ipv4_address}")
    if config.ipv6_address:
        if not any(":" in c.subnet for c in network.ipam_config):
            raise InvalidParameter(ERR_IP_NO_SUBNET)
        try:
            addr6 = ipaddress.IPv6Address(config.ipv6_address)
        except ValueError:
            raise InvalidParameter(f"invalid IPv6 address: {config.ipv6_address}") from None
        # without EnableIPv6 an IPv6 pool is only recorded: the address is kept, never assigned
        if network.subnet6 and addr6 not in ipaddress.IPv6Network(network.subnet6):
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {config.ipv6_address}")


def endpoint_settings(network: Network, ep: Endpoint | None, config: EndpointConfig) -> dict[str, Any]:
    """One ``NetworkSettings.Networks`` entry (API 1.50)."""
    wire = config.to_wire()
    running = ep is not None
    return {
        "IPAMConfig": wire["IPAMConfig"],
        "Links": wire["Links"],
        "Aliases": wire["Aliases"],
        "MacAddress": ep.mac if ep else config.mac_address,
        "DriverOpts": wire["DriverOpts"],
        "GwPriority": config.gw_priority,
        "NetworkID": network.id,
        "EndpointID": ep.endpoint_id if ep else "",
        "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": ep.gateway6 if ep else "",
        "GlobalIPv6Address": ep.ip6 if ep else "",
        "GlobalIPv6PrefixLen": ep.prefixlen6 if ep else 0,
        "DNSNames": (ep.dns_names or None) if running and ep else None,
    }


def settings_shape(
    sandbox_id: str,
    sandbox_key: str,
    networks: Mapping[str, dict[str, Any]],
    ports: Mapping[str, Any],
    default_bridge: dict[str, Any] | None,
) -> dict[str, Any]:
    """``NetworkSettings`` (API 1.50); the deprecated top-level IP fields mirror the
    default bridge's endpoint, as dockerd does."""
    br = default_bridge or {}
    return {
        "Bridge": "",
        "SandboxID": sandbox_id,
        "SandboxKey": sandbox_key,
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": dict(ports),
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": br.get("EndpointID", ""),
        "Gateway": br.get("Gateway", ""),
        "GlobalIPv6Address": br.get("GlobalIPv6Address", ""),
        "GlobalIPv6PrefixLen": br.get("GlobalIPv6PrefixLen", 0),
        "IPAddress": br.get("IPAddress", ""),
        "IPPrefixLen": br.get("IPPrefixLen", 0),
        "IPv6Gateway": br.get("IPv6Gateway", ""),
        "MacAddress": br.get("MacAddress", ""),
        "Networks": dict(networks),
    }


def pick_gateway(candidates: Sequence[tuple[Network, EndpointConfig]]) -> str | None:
    """The network that provides the default route: highest GwPriority, then network
    name; internal networks never do."""
    usable = [(n, c) for n, c in candidates if n.is_bridge and not n.internal]
    if not usable:
        return None
    usable.sort(key=lambda nc: (-nc[1].gw_priority, nc[0].name))
    return usable[0][0].id


def resolve_name(
    sandboxes: Iterable[Sandbox], networks: Mapping[str, Network], asker: Sandbox, name: str
) -> tuple[list[str], bool]:
    """IPv4 (and IPv6) addresses for ``name`` on the asking container's user-defined
    networks (``name`` or ``name.<network>``), first network with a match wins."""
    name = name.lower()
    others = list(sandboxes)
    for ep in asker.endpoints.values():
        net = networks.get(ep.network_id)
        if net is None or not net.user_defined:
            continue
        base = name
        suffix = "." + net.name.lower()
        if name.endswith(suffix):
            base = name[: -len(suffix)]
        base = link_aliases(ep).get(base, base)
        found: list[str] = []
        for sb in others:
            other = sb.endpoints.get(net.id)
            if other is None or not other.ip:
                continue
            if base in (n.lower() for n in other.dns_names):
                found.append(other.ip)
                if other.ip6:
                    found.append(other.ip6)
        if found:
            return found, True
    return [], False


def link_aliases(ep: Endpoint) -> dict[str, str]:
    """alias -> target name of an endpoint's ``Links`` (``target:alias``) on a
    user-defined network: libnetwork's per-endpoint alias table, seen only by the
    linking container (``HostConfig.Links`` do not apply there, as in dockerd)."""
    table: dict[str, str] = {}
    for entry in ep.config.links:
        target, _, alias = entry.partition(":")
        target = target.strip("/")
        table[(alias.rsplit("/", 1)[-1] or target).lower()] = target.lower()
    return table


def resolve_ip(
    sandboxes: Iterable[Sandbox], networks: Mapping[str, Network], asker: Sandbox, ip: str
) -> str | None:
    nets = [networks[ep.network_id] for ep in asker.endpoints.values() if ep.network_id in networks]
    for sb in sandboxes:
        for net in nets:
            if not net.user_defined:
                continue
            other = sb.endpoints.get(net.id)
            if other is not None and ip in (other.ip, other.ip6):
                return f"{sb.request.name}.{net.name}"
    return None


def name_matches(patterns: Iterable[str], value: str) -> bool:
    """moby's filters.Match: equal, or the pattern (a regexp) matches somewhere."""
    for pattern in patterns:
        if pattern == value:
            return True
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            continue
    return False


__all__ = [
    "ERR_ALIAS", "ERR_IP_DEFAULT", "ERR_IP_NO_SUBNET", "ERR_NO_NETWORK", "ERR_SHARED",
    "ERR_CONNECT_HOST", "ERR_DISCONNECT_HOST", "mode_network", "requested", "dns_names",
    "link_local_cidrs", "check_endpoint", "endpoint_settings", "settings_shape", "pick_gateway", "resolve_name",
    "link_aliases", "resolve_ip", "name_matches",
]
