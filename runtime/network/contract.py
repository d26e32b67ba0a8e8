"""The seam between the container service and networking.

How a container gets its network:

1. ``create``: the container service calls :meth:`ContainerNetworking.validate_sandbox` with
   the container's :class:`SandboxRequest`; it raises dockerd's errors (``network X not
   found``, static IP on a network without a user subnet, aliases on the default bridge,
   bad port specs...) and returns warnings. The record keeps ``NetworkingConfig.
   EndpointsConfig`` (``Container.endpoints_config``); :meth:`inactive_settings` renders
   ``NetworkSettings`` while the container is not running.
2. ``start``/exit: the container service runs ``runtime.network.hooks.ContainerNetworkSteps``
   in its own order: for a spec with a new net namespace it starts the init with
   ``pause_before_exec``, :meth:`attach_container` gets the pid (veths, addresses, routes,
   DNS server, published ports, /etc/hosts and /etc/resolv.conf written in place), then
   the service resumes the init; for ``host`` the files are written before the start; for
   ``container:<id>`` nothing happens (that container shares the other's files). A
   failure of the attachment fails the start with ``failed to set up container
   networking: <message>`` (dockerd's wording); failures of the init itself pass through
   unchanged. When the main process exits, the service's exit transition calls
   :meth:`detach_container` (with the pid, so a quick restart is not undone) before it
   records the new state. :meth:`settings` gives the live ``NetworkSettings``.
3. ``rename``: :meth:`rename_container` (DNS names follow).
4. ``POST /networks/{id}/connect|disconnect``: the network service calls back into the
   container side through :class:`ContainerDirectory` (``hooks.ContainerDirectoryAdapter``,
   registered by the engine) to resolve the container and persist its changed
   ``EndpointsConfig``.

Names of networks in :attr:`SandboxRequest.endpoints` may be names, IDs or ID prefixes;
the service canonicalises them and the returned settings are keyed by network *name*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_MODES = frozenset({"", "default", "bridge"})
# An EndpointsConfig key (never a valid network name) saying "the NetworkMode network is
# joined only if it is listed": kept after the container was disconnected from it.
PRIMARY_LEFT = "#primary-left"


def needs_netns_setup(network_mode: str) -> bool:
    """True when the container gets its own net namespace that networking must configure
    (default bridge or a user-defined network), i.e. ``pause_before_exec`` is needed."""
    return network_mode not in ("none", "host") and not network_mode.startswith("container:")


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One ``NetworkingConfig.EndpointsConfig`` entry (or a connect request's
    ``EndpointConfig``): what the user asked for on one network."""

    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    mac_address: str = ""
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    gw_priority: int = 0

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any] | None) -> EndpointConfig:
        """Parse an ``EndpointSettings`` JSON object (operational fields are ignored)."""
        if not wire:
            return cls()
        ipam = wire.get("IPAMConfig") or {}
        return cls(
            aliases=tuple(wire.get("Aliases") or ()),
            ipv4_address=str(ipam.get("IPv4Address") or ""),
            ipv6_address=str(ipam.get("IPv6Address") or ""),
            link_local_ips=tuple(str(ip) for ip in ipam.get("LinkLocalIPs") or ()),
            links=tuple(wire.get("Links") or ()),
            mac_address=str(wire.get("MacAddress") or ""),
            driver_opts=dict(wire.get("DriverOpts") or {}),
            gw_priority=int(wire.get("GwPriority") or 0),
        )

    def to_wire(self) -> dict[str, Any]:
        """The configuration half of ``EndpointSettings`` (for storing in the record)."""
        ipam: dict[str, Any] | None = None
        if self.ipv4_address or self.ipv6_address or self.link_local_ips:
            ipam = {}
            if self.ipv4_address:
                ipam["IPv4Address"] = self.ipv4_address
            if self.ipv6_address:
                ipam["IPv6Address"] = self.ipv6_address
            if self.link_local_ips:
                ipam["LinkLocalIPs"] = list(self.link_local_ips)
        return {
            "IPAMConfig": ipam,
            "Links": list(self.links) or None,
            "Aliases": list(self.aliases) or None,
            "MacAddress": self.mac_address,
            "DriverOpts": dict(self.driver_opts) or None,
            "GwPriority": self.gw_priority,
        }


@dataclass(frozen=True, slots=True)
class PortBindingSpec:
    """One ``HostConfig.PortBindings`` entry value item (``HostPort`` may be a range)."""

    host_ip: str = ""
    host_port: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A legacy ``--link``: the target container's ID and the alias used for it."""

    target_id: str
    alias: str


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """Everything networking needs to know about one container."""

    container_id: str
    name: str  # without the leading '/'
    hostname: str
    domainname: str = ""
    network_mode: str = "default"
    endpoints: Mapping[str, EndpointConfig] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    port_bindings: Mapping[str, tuple[PortBindingSpec, ...] | None] = field(default_factory=dict)
    publish_all_ports: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "name:ip", ip may be "host-gateway"
    links: tuple[Link, ...] = ()
    env: tuple[str, ...] = ()  # Config.Env: a linking container sees it as <ALIAS>_ENV_*
    hosts_path: str = ""  # written in place (it is bind-mounted into the container)
    resolv_conf_path: str = ""


class ContainerNetworking(Protocol):
    """What the container service calls. Implemented by ``NetworkService``."""

    async def validate_sandbox(self, request: SandboxRequest) -> list[str]:
        """Check a container's networking config at create; returns warnings."""
        ...

    def inactive_settings(self, request: SandboxRequest) -> dict[str, Any]:
        """``NetworkSettings`` (wire shape) of a created or stopped container."""
        ...

    async def attach_container(self, request: SandboxRequest, pid: int | None) -> dict[str, Any]:
        """Wire the container's net namespace (``/proc/<pid>/ns/net``) and return its
        ``NetworkSettings``. ``pid`` may be None only for ``host``/``none`` modes."""
        ...

    async def detach_container(self, container_id: str, only_pid: int | None = None) -> None:
        """Release everything :meth:`attach_container` set up (idempotent); with
        ``only_pid``, only if the attachment belongs to that container process."""
        ...

    def settings(self, container_id: str) -> dict[str, Any] | None:
        """Live ``NetworkSettings`` of a running container (None when not attached)."""
        ...

    async def rename_container(self, container_id: str, new_name: str) -> None: ...

    def container_network_ids(self, container_id: str) -> list[str]:
        """IDs of the networks a running container is attached to (``ps --filter network``)."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectTarget:
    """A container as the connect/disconnect endpoints need it."""

    request: SandboxRequest
    running_pid: int | None  # None when the container is not running


class ContainerDirectory(Protocol):
    """What the network service needs from the container side (registered by the engine
    with ``NetworkService.set_container_directory``)."""

    def network_target(self, ref: str) -> ConnectTarget:
        """Resolve a container reference; raises ``ContainerNotFound``."""
        ...

    async def endpoints_changed(
        self, container_id: str, endpoints: Mapping[str, EndpointConfig], settings: dict[str, Any] | None
    ) -> None:
        """Persist the container's new ``EndpointsConfig`` (and live settings, if running)."""
        ...


__all__ = [
    "DEFAULT_MODES", "PRIMARY_LEFT", "needs_netns_setup", "EndpointConfig", "PortBindingSpec", "Link",
    "SandboxRequest", "ContainerNetworking", "ConnectTarget", "ContainerDirectory",
]
