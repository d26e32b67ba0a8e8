"""NetworkService: networks (``/networks``) and the networking of running containers.

State on disk, under ``<data-root>/network/``:

* ``networks/<id>.json`` - one record per network (the predefined ``bridge``, ``host``
  and ``none`` included), with the subnet IPAM handed out;
* ``sandboxes/<container-id>.json`` - the networking of a running container, written
  *before* its veths exist and removed after they are gone.

At :meth:`NetworkService.open` the IPAM pools are re-requested from the network
records, bridges are (re)claimed, and every sandbox record is checked against the
kernel: if its container still lives (same pid, same netns inode) its addresses, DNS
listeners and published ports are restored, otherwise its veths are deleted and its
addresses stay free. Firewall rules are then re-rendered from that state. A clean
:meth:`close` removes every firewall rule and releases every user-network bridge with no
live endpoint (with live-restore it keeps them for the containers left running). So a
crash leaks nothing that the next start does not take back.

Ownership: a network's :class:`BridgeClaim` records whether pydockerd created its bridge;
only such bridges are ever deleted, an adopted one is given back as it was found. Host
veths are deleted only when they are veths plugged into the network's bridge, and work
inside a container's namespace goes through the :class:`NetnsHandle` taken when it
started, never through a pid that may since name a host process.

This class is a facade: the state is a :class:`runtime.network.context.NetworkContext`
(:attr:`NetworkService.context`) and each operation lives in its own module
(``lifecycle``, ``networks``, ``attach``, ``endpoints``, ``sandbox_files``, ``views``);
see :mod:`runtime.network.context`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from runtime.config import DaemonConfig
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.network import attach, endpoints, lifecycle, networks, sandbox_files, views
from runtime.network.context import NetworkContext
from runtime.network.contract import ContainerDirectory, EndpointConfig, SandboxRequest
from runtime.network.etcfiles import ExtServer
from runtime.network.firewall import Firewall, daemon_tag
from runtime.network.hostnet import reserved_networks
from runtime.network.model import Network
from runtime.network.networks import PRUNE_FILTERS, NetworkCreate
from runtime.network.views import LIST_FILTERS, AttachedContainer, NetworkView


class NetworkService:
    """Networks and container networking for one daemon. Satisfies
    :class:`runtime.network.contract.ContainerNetworking` and the DNS backend."""

    def __init__(
        self,
        config: DaemonConfig,
        events: EventBus,
        *,
        firewall: Firewall | None = None,
        firewall6: Firewall | None = None,
        reserved: Callable[[], Iterable[IPv4Network]] = reserved_networks,
        host_resolv_conf: Path = Path("/etc/resolv.conf"),
        host_hosts: Path = Path("/etc/hosts"),
    ) -> None:
        self.context = NetworkContext(
            config, events,
            firewall=firewall if firewall is not None else Firewall(daemon_tag(config.data_root)),
            firewall6=firewall6 if firewall6 is not None else Firewall(daemon_tag(config.data_root), family=6),
            reserved=reserved, host_resolv_conf=host_resolv_conf, host_hosts=host_hosts,
        )

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        config: DaemonConfig,
        events: EventBus,
        *,
        firewall: Firewall | None = None,
        firewall6: Firewall | None = None,
        reserved: Callable[[], Iterable[IPv4Network]] = reserved_networks,
        host_resolv_conf: Path = Path("/etc/resolv.conf"),
        host_hosts: Path = Path("/etc/hosts"),
    ) -> NetworkService:
        """A service with the networking of the previous run restored (see the module)."""
        service = cls(config, events, firewall=firewall, firewall6=firewall6, reserved=reserved,
                      host_resolv_conf=host_resolv_conf, host_hosts=host_hosts)
        await lifecycle.load(service.context)
        return service

    async def close(self, keep_running: bool = False) -> None:
        """Clean stop: stop DNS listeners and proxies, remove every firewall rule, and
        delete user-network bridges that no running container uses.

        ``keep_running`` (live-restore): containers outlive the daemon, so firewall
        rules, bridges, veths and sandbox records stay; only what lives in this process
        (embedded DNS, userland proxies) stops, and :meth:`open` re-creates it."""
        await lifecycle.close(self.context, keep_running)

    @property
    def config(self) -> DaemonConfig:
        return self.context.config

    @property
    def events(self) -> EventBus:
        return self.context.events

    @property
    def firewall(self) -> Firewall:
        return self.context.firewall

    @property
    def firewall6(self) -> Firewall:
        return self.context.firewall6

    # -- lookups and views -----------------------------------------------------------

    def find(self, ref: str) -> Network:
        """dockerd's FindNetwork: full ID, then exact name, then unique ID prefix."""
        return self.context.find(ref)

    @property
    def default_bridge(self) -> Network:
        return self.context.default_bridge

    def host_gateway_ips(self) -> list[str]:
        return self.context.host_gateway_ips()

    def view(self, ref: str, scope: str = "") -> NetworkView:
        return views.view(self.context, ref, scope)

    def views(self, filters: Filters) -> list[NetworkView]:
        return views.views(self.context, filters)

    # -- networks --------------------------------------------------------------------

    async def create(self, req: NetworkCreate) -> str:
        return await networks.create(self.context, req)

    async def remove(self, ref: str) -> None:
        await networks.remove(self.context, ref)

    async def prune(self, filters: Filters) -> list[str]:
        return await networks.prune(self.context, filters)

    # -- container hooks (ContainerNetworking) ----------------------------------------

    async def validate_sandbox(self, request: SandboxRequest) -> list[str]:
        return await attach.validate_sandbox(self.context, request)

    def inactive_settings(self, request: SandboxRequest) -> dict[str, Any]:
        return views.inactive_settings(self.context, request)

    def settings(self, container_id: str) -> dict[str, Any] | None:
        sandbox = self.context.sandboxes.get(container_id)
        if sandbox is None:
            return None
        return views.render(self.context, sandbox)

    def container_network_ids(self, container_id: str) -> list[str]:
        sandbox = self.context.sandboxes.get(container_id)
        return list(sandbox.endpoints) if sandbox else []

    async def attach_container(self, request: SandboxRequest, pid: int | None) -> dict[str, Any]:
        return await attach.attach_container(self.context, request, pid)

    def link_environment(self, req: SandboxRequest) -> list[str]:
        """The variables of the container's legacy links to running containers on the
        default bridge (``docker run --link name:alias``)."""
        return sandbox_files.link_environment(self.context, req)

    async def detach_container(self, container_id: str, only_pid: int | None = None) -> None:
        """``only_pid``: detach only if the sandbox still belongs to that process (an exit
        report may arrive after a restart already attached the container again)."""
        await attach.detach_container(self.context, container_id, only_pid)

    async def rename_container(self, container_id: str, new_name: str) -> None:
        await attach.rename_container(self.context, container_id, new_name)

    # -- DnsBackend ------------------------------------------------------------------

    def resolve_name(self, container_id: str, name: str) -> tuple[list[str], bool]:
        return self.context.resolver.resolve_name(container_id, name)

    def resolve_ip(self, container_id: str, ip: str) -> str | None:
        return self.context.resolver.resolve_ip(container_id, ip)

    def upstreams(self, container_id: str) -> list[ExtServer]:
        return self.context.resolver.upstreams(container_id)

    def proxy_dns(self, container_id: str) -> bool:
        return self.context.resolver.proxy_dns(container_id)

    # -- connect / disconnect (POST /networks/{id}/connect|disconnect) ----------------

    def set_container_directory(self, directory: ContainerDirectory) -> None:
        self.context.directory = directory

    async def connect(self, net_ref: str, container_ref: str, config: EndpointConfig) -> None:
        await endpoints.connect(self.context, net_ref, container_ref, config)

    async def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        await endpoints.disconnect(self.context, net_ref, container_ref, force)


__all__ = ["LIST_FILTERS", "PRUNE_FILTERS", "NetworkCreate", "AttachedContainer", "NetworkView", "NetworkService"]
