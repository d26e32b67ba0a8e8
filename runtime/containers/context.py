"""The one context every container operation takes.

Each operation (``create``, ``start``, ``stop``, ``kill``, ``delete``, ``exit``, ``attach``,
``logs``, ``commit``, ``rename``) is a module of functions over a :class:`ContainerContext`:
the record store, the live-process table, events, and the neighbours typed by the
Protocols of ``runtime.containers.ports``. ``ContainerService`` builds it once from what
``runtime.engine.open_container_services`` hands in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from runtime.containers.model import Container
from runtime.containers.ports import (
    CgroupBackend, ContainerNetworking, HealthHooks, ImageBackend, NetworkSteps, RwLayerStore,
    VolumeMounts,
)
from runtime.containers.rootfs import RootfsAccess
from runtime.containers.stdio import StdioFanout
from runtime.containers.store import ContainerStore
from runtime.events import EventBus
from runtime.linux.cgroups import CgroupHandle
from runtime.process.contract import ExitReport, ProcessRuntime, StartedProcess


@dataclass(frozen=True, slots=True)
class ContainerSettings:
    """The daemon's settings that container operations read."""

    cgroupns_mode: str = "host"  # --default-cgroupns-mode
    init: bool = False  # --init
    init_path: str = ""  # --init-path ("": docker-init, else Debian's tini)
    all_caps: tuple[str, ...] | None = None  # the host's capabilities (None: the kernel's)
    masked_default: tuple[str, ...] | None = None  # default masked paths (tests)


@dataclass(slots=True)
class Live:
    """Runtime-only state of a container (never persisted).

    ``starting``: a start is between ``runtime.start`` and ``set_running``; an exit of
    its process meanwhile is kept in ``start_exit`` and handled by that start.
    ``exit_task``: the exit transition in progress (``runtime.containers.exit``).
    ``restart_task`` / ``backing_off``: the restart policy's back-off, then its start."""

    process: StartedProcess | None = None
    fanout: StdioFanout | None = None
    cgroup: CgroupHandle | None = None
    pending: list[Callable[[StdioFanout | None], None]] = field(default_factory=list)
    starting: bool = False
    start_exit: ExitReport | None = None
    exit_task: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    backing_off: bool = False
    restart_delay: float = 0.0
    # one lifecycle operation at a time (dockerd's container lock); exits never take it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ExitSink(Protocol):
    """Where a start hands an exit it saw early, and a failed ``--rm`` start its removal
    (``runtime.containers.exit.ExitMonitor``)."""

    def on_exit(self, report: ExitReport) -> None: ...

    async def auto_remove(self, container: Container) -> None: ...


@dataclass(slots=True, eq=False)
class ContainerContext:
    """What the container operations share. Built once per engine by ``ContainerService``.

    Mutable on purpose, in two places only: ``runtime`` is replaced when a supervisor dies
    (``restore.adopt_runtime``), ``health`` is attached once exec exists (health probes
    are execs, and execs need this context first)."""

    store: ContainerStore
    events: EventBus
    images: ImageBackend
    layers: RwLayerStore
    runtime: ProcessRuntime
    cgroups: CgroupBackend | None
    settings: ContainerSettings
    networking: ContainerNetworking | None = None
    network_steps: NetworkSteps | None = None
    volumes: VolumeMounts | None = None
    health: HealthHooks | None = None
    live: dict[str, Live] = field(default_factory=dict)
    # roots of stopped containers opened for docker cp/export (a start waits for them)
    rootfs: RootfsAccess = field(default_factory=RootfsAccess)
    shutting_down: bool = False  # daemon shutdown: exits do not restart

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def live_of(self, container: Container) -> Live:
        return self.live.setdefault(container.id, Live())

    def event(self, container: Container, action: str, **attributes: str) -> None:
        """Publish a ``container`` event with the record's attributes (name, image, labels)."""
        self.events.publish("container", action, container.id,
                            container.event_attributes(**attributes))

    @property
    def cgroup_v2(self) -> bool:
        return str(getattr(self.cgroups, "version", "1")) == "2"


__all__ = ["ContainerSettings", "Live", "ExitSink", "ContainerContext"]
