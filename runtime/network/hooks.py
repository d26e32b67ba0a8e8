"""Wiring networking into container starts without touching the container service.

:class:`NetworkedRuntime` decorates the engine's ``ProcessRuntime``: when a container's
spec asks for a new network namespace it starts the init with ``pause_before_exec``,
lets the network service configure ``/proc/<pid>/ns/net`` (veths, addresses, DNS,
ports, /etc/hosts and /etc/resolv.conf), then resumes it; for ``host`` networking it
writes the files before the start. Exits of a container's main process detach its
networking. :func:`sandbox_request_for` builds the :class:`SandboxRequest` from a
container record, and :class:`ContainerDirectoryAdapter` lets ``POST
/networks/{id}/connect`` find containers.

Engine wiring (see the module's ``__all__``)::

    networking = await NetworkService.open(config, events)
    runtime = NetworkedRuntime(client, networking)
    containers, execs = await open_container_services(config, events, images, runtime)
    runtime.set_requests(lambda cid: sandbox_request_for(containers.get(cid), containers.get))
    networking.set_container_directory(ContainerDirectoryAdapter(containers, networking))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as _signal
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
    ExitReport,
    ProcessRuntime,
    StartedProcess,
    StartInvalidConfig,
    StartSystemError,
)
from runtime.spec.model import ContainerSpec, ExecSpec

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


class NetworkedRuntime:
    """A :class:`ProcessRuntime` that gives containers their network."""

    def __init__(self, inner: ProcessRuntime, networking: NetworkService,
                 requests: Callable[[str], SandboxRequest | None] | None = None) -> None:
        self.inner = inner
        self.networking = networking
        self._requests = requests or (lambda _cid: None)
        self._tasks: set[asyncio.Task[None]] = set()
        inner.on_exit(self._on_exit)

    def set_requests(self, requests: Callable[[str], SandboxRequest | None]) -> None:
        self._requests = requests

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        try:
            request = self._requests(spec.container_id)
        except Exception:
            request = None
        if request is None:
            return await self.inner.start(spec)
        namespaces = spec.namespaces
        linked = self.networking.link_environment(request)
        if linked:
            spec = replace(spec, process=replace(spec.process, env=merge_link_env(spec.process.env, linked)))
        if "net" in namespaces and namespaces["net"] is None:
            started = await self.inner.start(replace(spec, pause_before_exec=True))
            try:
                await self.networking.attach_container(request, started.pid)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await self.inner.signal(started.pid, _signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await self.networking.detach_container(spec.container_id)
                if isinstance(exc, Exception):
                    raise _start_error(exc) from exc
                raise
            try:
                # the init's own failures (exec not found...) surface here, unchanged
                await self.inner.resume(spec.container_id)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.networking.detach_container(spec.container_id)
                raise
            return started
        if "net" not in namespaces and request.network_mode == "host":
            try:
                await self.networking.attach_container(request, None)
            except Exception as exc:
                raise _start_error(exc) from exc
            try:
                return await self.inner.start(spec)
            except BaseException:
                await self.networking.detach_container(spec.container_id)
                raise
        return await self.inner.start(spec)

    def _on_exit(self, report: ExitReport) -> None:
        if report.exec_id is not None:
            return
        task = asyncio.get_running_loop().create_task(
            self.networking.detach_container(report.container_id, only_pid=report.pid)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pass-through --------------------------------------------------------------

    async def resume(self, container_id: str) -> None:
        await self.inner.resume(container_id)

    async def exec(self, spec: ExecSpec) -> StartedProcess:
        return await self.inner.exec(spec)

    async def signal(self, pid: int, signal: int) -> None:
        await self.inner.signal(pid, signal)

    def on_exit(self, callback: Callable[[ExitReport], None]) -> None:
        self.inner.on_exit(callback)

    async def running(self) -> list[tuple[str, str | None, StartedProcess]]:
        return await self.inner.running()

    async def close(self) -> None:
        await self.inner.close()


class _ContainerStore(Protocol):
    def get(self, ref: str) -> Any: ...


class ContainerDirectoryAdapter:
    """:class:`runtime.network.contract.ContainerDirectory` over the container service.

    The new EndpointsConfig of a connect/disconnect is kept on the record's
    ``endpoints_config`` attribute (saved with ``store.save`` when the service has one),
    which :func:`sandbox_request_for` reads at the next start."""

    def __init__(self, containers: Any) -> None:
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


__all__ = ["ERR_SETUP", "sandbox_request_for", "NetworkedRuntime", "ContainerDirectoryAdapter"]
