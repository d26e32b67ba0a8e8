"""What the embedded DNS server asks about a querying container.

:class:`SandboxResolver` answers the :class:`runtime.network.dns.DnsBackend` questions from
the network service's live maps (it reads them, never changes them): names and addresses
of containers on the asker's networks, its upstream servers, and whether it may forward
at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.network.etcfiles import ExtServer
from runtime.network.model import Network, Sandbox
from runtime.network.sandboxes import resolve_ip, resolve_name


class SandboxResolver:
    """:class:`runtime.network.dns.DnsBackend` over the sandboxes of running containers."""

    def __init__(self, sandboxes: Mapping[str, Sandbox], networks: Mapping[str, Network],
                 ext_servers: Mapping[str, list[ExtServer]]) -> None:
        self._sandboxes = sandboxes
        self._networks = networks
        self._ext_servers = ext_servers

    def resolve_name(self, container_id: str, name: str) -> tuple[list[str], bool]:
        asker = self._sandboxes.get(container_id)
        if asker is None:
            return [], False
        return resolve_name(self._sandboxes.values(), self._networks, asker, name)

    def resolve_ip(self, container_id: str, ip: str) -> str | None:
        asker = self._sandboxes.get(container_id)
        if asker is None:
            return None
        return resolve_ip(self._sandboxes.values(), self._networks, asker, ip)

    def upstreams(self, container_id: str) -> list[ExtServer]:
        return self._ext_servers.get(container_id, [])

    def proxy_dns(self, container_id: str) -> bool:
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            return False
        return any(
            (net := self._networks.get(ep.network_id)) is not None and not net.internal
            for ep in sandbox.endpoints.values()
        )


__all__ = ["SandboxResolver"]
