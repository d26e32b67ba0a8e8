"""Networking's part of a container's start and exit, called by the container service.

:class:`ContainerNetworkSteps`: for a spec with a new network namespace the service starts
the init with ``pause_before_exec``, :meth:`~ContainerNetworkSteps.attach` lets the network
service configure ``/proc/<pid>/ns/net`` (veths, addresses, DNS, ports, /etc/hosts and
/etc/resolv.conf), then the service resumes it; for ``host`` networking the files are
written before the start. On exit the service detaches the networking itself, in order.
:func:`sandbox_request_for` builds the :class:`SandboxRequest` from a container record, and
:class:`ContainerDirectoryAdapter` lets ``POST /networks/{id}/connect`` find containers.

Engine wiring (``runtime.engine``): ``ContainerNetworkSteps(networking)``, then
``set_requests(containers.sandbox_request)``;
``networking.set_container_directory(ContainerDirectoryAdapter(containers))``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from runtime.errors import InvalidParameter
from runtime.network.contract import (
    DEFAULT_MODES,
    ConnectTarget,
    EndpointConfig,
    Link,
    PortBindingSpec,
    SandboxRequest,
)
from runtime.network.links import merge_link_env
from runtime.network.service import NetworkService
from runtime.process.contract import (
    EXIT_UNKNOWN,
    StartInvalidConfig,
    StartSystemError,
)
from runtime.spec.model import ContainerSpec

log = logging.getLogger(__name__)

ERR_SETUP = "failed to set up container networking"
ENDPOINTS_ATTR = "endpoints_config"  # where a container record may keep its EndpointsConfig


class _ContainerLike(Protocol):
    id: str
    name: str
    config: Any
    host_config: Any

    @property
    def hosts_path(self) -> Any: ...

    @property
    def resolv_conf_path(self) -> Any: ...


def _endpoints_of(container: Any) -> dict[str, EndpointConfig]:
    raw = getattr(container, ENDPOINTS_ATTR, None) or {}
    return {name: cfg if isinstance(cfg, EndpointConfig) else EndpointConfig.from_wire(cfg)
            for name, cfg in raw.items()}


def sandbox_request_for(
    container: _ContainerLike,
    lookup: Callable[[str], Any] | None = None,
    endpoints: Mapping[str, EndpointConfig] | None = None,
) -> SandboxRequest:
    """The networking view of a container record (``lookup`` resolves ``--link`` targets
    by name to records with an ``id``; ``endpoints`` defaults to the record's
    ``endpoints_config`` attribute, when it has one)."""
    cfg, host = container.config, container.host_config
    bindings: dict[str, tuple[PortBindingSpec, ...] | None] = {}
    for key, items in (host.port_bindings or {}).items():
        bindings[key] = None if items is None else tuple(
            PortBindingSpec(getattr(b, "host_ip", ""), getattr(b, "host_port", "")) for b in items
        )
    links: list[Link] = []
    # dockerd ignores HostConfig.Links of a container on a user-defined network
    legacy = (host.network_mode or "default") in DEFAULT_MODES
    for entry in host.links or () if legacy else ():
        target, _, alias = entry.partition(":")
        alias = alias or target
        if lookup is not None:
            with contextlib.suppress(Exception):
                links.append(Link(lookup(target.lstrip("/")).id, alias.rsplit("/", 1)[-1]))
    return SandboxRequest(
        container_id=container.id,
        name=container.name.lstrip("/"),
        hostname=cfg.hostname or container.id[:12],
        domainname=cfg.domainname or "",
        network_mode=host.network_mode or "default",
        endpoints=dict(endpoints) if endpoints is not None else _endpoints_of(container),
        exposed_ports=tuple(cfg.exposed_ports or ()),
        port_bindings=bindings,
        publish_all_ports=bool(host.publish_all_ports),
        dns=tuple(host.dns or ()),
        dns_search=tuple(host.dns_search or ()),
        dns_options=tuple(host.dns_options or ()),
        extra_hosts=tuple(host.extra_hosts or ()),
        links=tuple(links),
        env=tuple(cfg.env or ()),
        hosts_path=str(container.hosts_path),
        resolv_conf_path=str(container.resolv_conf_path),
    )


def _start_error(exc: BaseException) -> StartSystemError | StartInvalidConfig:
    message = f"{ERR_SETUP}: {exc}"
    cls = StartInvalidConfig if isinstance(exc, InvalidParameter) else StartSystemError
    return cls("network", str(exc), EXIT_UNKNOWN, message=message)


class ContainerNetworkSteps:
    """The networking steps of a container's start and exit.

    The container service calls them, in its order: :meth:`prepare` before the start
    (``host`` networking writes its files; a spec with a new network namespace comes back
    with ``pause_before_exec``), :meth:`attach` while that paused init waits, then it
    resumes the init; on exit it calls :meth:`detach` before publishing the new state.
    Nothing here subscribes to exits: the container service owns that sequence."""

    def __init__(self, networking: NetworkService,
                 requests: Callable[[str], SandboxRequest | None] | None = None) -> None:
        self.networking = networking
        self._requests = requests or (lambda _cid: None)

    def set_requests(self, requests: Callable[[str], SandboxRequest | None]) -> None:
        self._requests = requests

    def _request(self, container_id: str) -> SandboxRequest | None:
        try:
            return self._requests(container_id)
        except Exception:  # noqa: BLE001 - no record: no networking
            return None

    async def prepare(self, spec: ContainerSpec) -> ContainerSpec:
        request = self._request(spec.container_id)
        if request is None:
            return spec
        namespaces = spec.namespaces
        linked = self.networking.link_environment(request)
        if linked:
            spec = replace(spec, process=replace(spec.process, env=merge_link_env(spec.process.env, linked)))
        if "net" in namespaces and namespaces["net"] is None:
            return replace(spec, pause_before_exec=True)
        if "net" not in namespaces and request.network_mode == "host":
            try:
                await self.networking.attach_container(request, None)
            except Exception as exc:
                raise _start_error(exc) from exc
        return spec

    async def attach(self, spec: ContainerSpec, pid: int) -> None:
        request = self._request(spec.container_id)
        if request is None:
            return
        try:
            await self.networking.attach_container(request, pid)
        except Exception as exc:
            raise _start_error(exc) from exc

    async def detach(self, container_id: str, pid: int | None) -> None:
        await self.networking.detach_container(container_id, only_pid=pid)


class _ContainerStore(Protocol):
    """What the adapter needs of the container service: containers by id or name."""

    def get(self, ref: str) -> Any: ...


class ContainerDirectoryAdapter:
    """:class:`runtime.network.contract.ContainerDirectory` over the container service.

    The new EndpointsConfig of a connect/disconnect is kept on the record's
    ``endpoints_config`` attribute (saved with ``store.save`` when the service has one),
    which :func:`sandbox_request_for` reads at the next start."""

    def __init__(self, containers: _ContainerStore) -> None:
        self._containers = containers

    def network_target(self, ref: str) -> ConnectTarget:
        container = self._containers.get(ref)
        pid = container.state.pid if container.state.running else None
        return ConnectTarget(sandbox_request_for(container, self._containers.get), pid or None)

    async def endpoints_changed(self, container_id: str, endpoints: Mapping[str, EndpointConfig],
                                settings: dict[str, Any] | None) -> None:
        container = self._containers.get(container_id)
        with contextlib.suppress(AttributeError):
            setattr(container, ENDPOINTS_ATTR, {k: v.to_wire() for k, v in endpoints.items()})
        store = getattr(self._containers, "store", None)
        if store is not None and hasattr(store, "save"):
            store.save(container)


__all__ = ["ERR_SETUP", "sandbox_request_for", "ContainerNetworkSteps", "ContainerDirectoryAdapter"]
