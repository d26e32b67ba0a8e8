"""The container service: one object the API handlers call, one method per request.

It holds the :class:`~runtime.containers.context.ContainerContext` and the exit monitor;
each operation lives in its own module and takes that context (as moby's ``daemon/``):

========================  ==================================================
``create.py``             create (defaults, name, layer, volumes, /etc files)
``start.py``              start, and the start of a main process
``stop.py`` / ``kill.py`` stop, restart, daemon shutdown / kill
``delete.py``             rm, ``--rm``, ``rm --link``
``exit.py``               exit transition, restart policy back-off
``restore.py``            daemon start (reattach), supervisor replacement
``attach.py`` ``logs.py`` attach, resize / logs
``commit.py``             commit; ``rename.py`` rename; ``freeze.py`` pause
``overview.py``           inspect, ps (``listing.py``: the filters); ``prune.py``
``top.py`` ``stats.py``   top, stats; ``update.py`` update
``lifecycle.py``          lock, settle, signal, cgroup steps they share
========================  ==================================================

Exec lives in ``runtime.containers.execs``; health probes (execs) in ``probes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.containers import attach as attach_op
from runtime.containers import create as create_op
from runtime.containers import delete, freeze, kill as kill_op, logs as logs_op, overview
from runtime.containers import prune as prune_op, restore
from runtime.containers import rename as rename_op, start as start_op, stop as stop_op
from runtime.containers import stats as stats_op, top as top_op, update as update_op
from runtime.containers.attach import AttachOptions, Attachment
from runtime.containers.commit import CommitOptions, commit as commit_container
from runtime.containers.context import ContainerContext, ContainerSettings, Live
from runtime.containers.create import CreateRequest, CreateResult
from runtime.containers.exit import ExecExitHandler, ExitMonitor
from runtime.containers.files import ContainerFiles
from runtime.containers.listing import ListOptions
from runtime.containers.logs import LogsOptions, LogsStream
from runtime.containers.model import Container, HostConfig
from runtime.containers.netview import network_settings, sandbox_request
from runtime.containers.overview import ContainerView
from runtime.containers.ports import (
    CgroupBackend, ContainerNetworking, HealthHooks, ImageBackend, NetworkSteps, RwLayerStore,
    VolumeMounts,
)
from runtime.containers.prune import PruneReport
from runtime.containers.rootfs import RootfsAccess
from runtime.containers.state import ExitStatus, WaitCondition
from runtime.containers.stats import Frame
from runtime.containers.store import ContainerStore
from runtime.containers.top import TopResult
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.network.contract import SandboxRequest
from runtime.process.contract import ProcessRuntime


class ContainerService:
    """Facade over the container operations (``compat_api`` calls one method per request).

    ``networking`` and ``volumes`` are given at construction; ``set_health`` and
    ``set_exec_exit_handler`` come once exec exists (health probes are execs)."""

    def __init__(
        self,
        data_root: Path,
        events: EventBus,
        images: ImageBackend,
        layers: RwLayerStore,
        runtime: ProcessRuntime,
        cgroups: CgroupBackend | None = None,
        all_caps: tuple[str, ...] | None = None,
        masked_default: tuple[str, ...] | None = None,
        *,
        settings: ContainerSettings | None = None,
        networking: ContainerNetworking | None = None,
        network_steps: NetworkSteps | None = None,
        volumes: VolumeMounts | None = None,
    ) -> None:
        if settings is None:
            # dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1
            v2 = str(getattr(cgroups, "version", "1")) == "2"
            settings = ContainerSettings(cgroupns_mode="private" if v2 else "host")
        if all_caps is not None:
            settings = replace(settings, all_caps=all_caps)
        if masked_default is not None:
            settings = replace(settings, masked_default=masked_default)
        self.ctx = ContainerContext(
            store=ContainerStore(data_root / "containers"), events=events, images=images,
            layers=layers, runtime=runtime, cgroups=cgroups, settings=settings,
            networking=networking, network_steps=network_steps, volumes=volumes,
        )
        self.monitor = ExitMonitor(self.ctx, self._restart_by_policy, self._auto_remove)
        # docker cp / export / diff on this service's containers
        self.files = ContainerFiles(self.ctx)
        runtime.on_exit(self.monitor.on_exit)
        images.set_usage_checker(self.image_users, self.image_running_users)

    async def _restart_by_policy(self, container: Container) -> None:
        await start_op.start_process(self.ctx, self.monitor, container, by_policy=True)

    async def _auto_remove(self, container: Container) -> None:
        await delete.remove_container(self.ctx, container, container.id, force=True,
                                      volumes=True)

    # --- what the context holds ----------------------------------------------------------

    @property
    def store(self) -> ContainerStore:
        return self.ctx.store

    @property
    def events(self) -> EventBus:
        return self.ctx.events

    @property
    def images(self) -> ImageBackend:
        return self.ctx.images

    @property
    def layers(self) -> RwLayerStore:
        return self.ctx.layers

    @property
    def runtime(self) -> ProcessRuntime:
        return self.ctx.runtime

    @property
    def cgroups(self) -> CgroupBackend | None:
        return self.ctx.cgroups

    @property
    def live(self) -> dict[str, Live]:
        return self.ctx.live

    @property
    def rootfs(self) -> RootfsAccess:
        return self.ctx.rootfs

    @property
    def health(self) -> HealthHooks | None:
        return self.ctx.health

    @property
    def settings(self) -> ContainerSettings:
        return self.ctx.settings

    @settings.setter
    def settings(self, settings: ContainerSettings) -> None:
        self.ctx.settings = settings

    # --- wiring ------------------------------------------------------------------------

    async def load(self) -> None:
        """Load records from disk and reattach to processes that are still running."""
        await restore.load(self.ctx, self.monitor)

    async def start_restart_policy_containers(self) -> None:
        """At daemon start: start the containers whose restart policy says so."""
        await restore.start_restart_policy_containers(self.ctx, self.monitor)

    async def adopt_runtime(self, runtime: ProcessRuntime) -> None:
        """``runtime`` replaces a supervisor that died (see ``restore.adopt_runtime``)."""
        restore.adopt_runtime(self.ctx, self.monitor, runtime)

    def set_exec_exit_handler(self, handler: ExecExitHandler) -> None:
        self.monitor.set_exec_exit_handler(handler)

    def set_health(self, monitors: HealthHooks) -> None:
        self.ctx.health = monitors

    def set_network_steps(self, steps: NetworkSteps | None) -> None:
        """Replace the networking steps of starts and exits (tests use fakes)."""
        self.ctx.network_steps = steps

    # --- lookups -----------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.ctx.get(ref)

    def live_of(self, container: Container) -> Live:
        return self.ctx.live_of(container)

    def event(self, container: Container, action: str, **attributes: str) -> None:
        """Publish a ``container`` event for ``container`` (exec, cp, health use it)."""
        self.ctx.event(container, action, **attributes)

    def sandbox_request(self, container_id: str) -> SandboxRequest:
        """The networking request of a container (``ContainerNetworkSteps`` asks it)."""
        return sandbox_request(self.ctx, self.get(container_id))

    def network_settings(self, container: Container) -> dict[str, Any] | None:
        """``NetworkSettings`` from the network service (None without one)."""
        return network_settings(self.ctx, container)

    def sizes(self, container: Container) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): bytes in the writable layer, and that plus the image."""
        return overview.sizes(self.ctx, container)

    def image_users(self, image_id: str) -> list[str]:
        """The ``rmi`` usage checker: containers created from ``image_id``."""
        return [c.id for c in self.ctx.store if c.image_id == image_id]

    def image_running_users(self, image_id: str) -> list[str]:
        return [c.id for c in self.ctx.store if c.image_id == image_id and c.state.running]

    def init_path_for(self, host: HostConfig) -> str | None:
        """The init binary a container with ``host`` runs as PID 1 (None: none)."""
        return start_op.init_path_for(self.ctx, host)

    # --- the operations ----------------------------------------------------------------

    def inspect(self, ref: str, size: bool = False) -> ContainerView:
        return overview.inspect(self.ctx, ref, size)

    def list_containers(self, options: ListOptions) -> list[ContainerView]:
        return overview.list_containers(self.ctx, options)

    async def create(self, request: CreateRequest) -> CreateResult:
        return await create_op.create(self.ctx, request)

    async def start(self, ref: str) -> None:
        await start_op.start(self.ctx, self.monitor, ref)

    async def stop(self, ref: str, signal: str | None = None, timeout: int | None = None) -> None:
        await stop_op.stop(self.ctx, ref, signal, timeout)

    async def restart(self, ref: str, signal: str | None = None,
                      timeout: int | None = None) -> None:
        await stop_op.restart(self.ctx, self.monitor, ref, signal, timeout)

    async def shutdown(self, timeout: int | None = None) -> None:
        """Daemon shutdown without live-restore (see ``stop.shutdown``)."""
        await stop_op.shutdown(self.ctx, timeout)

    async def kill(self, ref: str, signal: str = "") -> None:
        await kill_op.kill(self.ctx, ref, signal)

    def wait(self, ref: str, condition: WaitCondition) -> asyncio.Future[ExitStatus]:
        """Look up now (404 before any byte is sent); the future resolves later."""
        return self.get(ref).state.wait(condition)

    async def remove(self, ref: str, force: bool = False, volumes: bool = False,
                     link: bool = False) -> None:
        await delete.remove(self.ctx, ref, force, volumes, link)

    async def rename(self, ref: str, new_name: str) -> None:
        await rename_op.rename(self.ctx, ref, new_name)

    def attach(self, ref: str, options: AttachOptions) -> Attachment:
        """Validate and set up an attach session (the API layer hijacks afterwards)."""
        return attach_op.attach(self.ctx, ref, options)

    def logs(self, ref: str, options: LogsOptions) -> LogsStream:
        return logs_op.logs(self.ctx, ref, options)

    def resize(self, ref: str, height: int, width: int) -> None:
        attach_op.resize(self.ctx, ref, height, width)

    async def commit(self, ref: str, options: CommitOptions) -> str:
        return await commit_container(self.ctx, ref, options)

    async def pause(self, ref: str) -> None:
        await freeze.pause(self.ctx, ref)

    async def unpause(self, ref: str) -> None:
        await freeze.unpause(self.ctx, ref)

    async def prune(self, filters: Filters) -> PruneReport:
        """``POST /containers/prune``: stopped containers matching ``filters`` removed."""
        return await prune_op.prune(self.ctx, filters)

    async def top(self, ref: str, ps_args: str = "") -> TopResult:
        return await top_op.top(self.ctx, ref, ps_args)

    async def update(self, ref: str, request: HostConfig) -> list[str]:
        return await update_op.update(self.ctx, ref, request)

    async def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[Frame]:
        """The frames of ``GET /stats`` (the container looked up at once)."""
        return await stats_op.frames(self.ctx, ref, stream, one_shot)


__all__ = ["ContainerService", "CreateRequest", "CreateResult", "LogsOptions", "LogsStream",
           "CommitOptions", "Live"]
