"""The Engine: owns the daemon's services and satisfies the API routers' backend Protocols.

It is the composition point inside runtime; ``compat_api.__main__`` builds one with
:meth:`Engine.open` and hands it to the HTTP app. Routers reach the services through the
attributes ``images``, ``containers``, ``execs``, ``networking`` and ``volumes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from runtime.config import DaemonConfig
from runtime.containers.adapters import ImageBackendAdapter, ImageRwLayers
from runtime.containers.context import ContainerSettings
from runtime.containers.execs import ExecService
from runtime.containers.probes import attach as attach_health
from runtime.containers.model import Container
from runtime.containers.service import ContainerService
from runtime.events import EventBus
from runtime.images.model import ImageSummary
from runtime.images.service import ImageService
from runtime.errors import SystemError_
from runtime.linux.cgroups import CgroupManager
from runtime.linux.cgroups_systemd import make_cgroup_manager
from runtime.linux.mounts import root_is_mount_point
from runtime.network.hooks import ContainerDirectoryAdapter, ContainerNetworkSteps
from runtime.network.service import NetworkService
from runtime.process.client import SupervisorClient, connect_or_spawn
from runtime.process.contract import ProcessRuntime
from runtime.statefile import ensure_private_dir, write_bytes_atomic
from runtime.storage.trash import TRASH
from runtime.system.host import HostFacts, read_host_facts
from runtime.system.initbin import InitBinary, resolve as resolve_init
from runtime.volumes.containers import ContainerVolumes
from runtime.volumes.model import VolumeUsage
from runtime.volumes.service import VolumeService

log = logging.getLogger(__name__)

ENGINE_ID_FILE = "engine-id"
# dockerd without live-restore stops running containers when it shuts down
SHUTDOWN_STOP_TIMEOUT = 10


@dataclass(frozen=True, slots=True)
class Inventory:
    """Object counts shown by ``GET /info``."""

    containers: int = 0
    running: int = 0
    paused: int = 0
    stopped: int = 0
    images: int = 0


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """What ``GET /system/df`` reports, as domain values (the API renders them)."""

    layers_size: int = 0
    images: tuple[ImageSummary, ...] = ()
    containers: tuple[tuple[Container, tuple[int, int]], ...] = ()  # (record, (SizeRw, SizeRootFs))
    volumes: tuple[VolumeUsage, ...] = ()


ROOT_NOT_A_MOUNT = (
    "the daemon's root directory is not a mount point (started in a chroot?): containers "
    "could not get a private mount namespace. Make it one before starting the daemon in it, "
    "e.g. mount --bind DIR DIR; chroot DIR ...")


def check_root_is_a_mount(mountinfo_path: str = "/proc/self/mountinfo") -> None:
    """Refuse to start where no container could (raises SystemError_ with the reason)."""
    try:
        mountinfo = Path(mountinfo_path).read_text()
    except OSError as exc:
        raise SystemError_(f"cannot read {mountinfo_path}: {exc}") from exc
    if not root_is_mount_point(mountinfo):
        raise SystemError_(ROOT_NOT_A_MOUNT)


def _load_or_create_engine_id(data_root: Path) -> str:
    path = data_root / ENGINE_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    engine_id = str(uuid.uuid4())
    write_bytes_atomic(path, engine_id.encode() + b"\n")
    return engine_id


async def open_container_services(
    config: DaemonConfig,
    events: EventBus,
    images: ImageService,
    runtime: ProcessRuntime,
    cgroups: CgroupManager | None = None,
    networking: NetworkService | None = None,
    volumes: ContainerVolumes | None = None,
) -> tuple[ContainerService, ExecService]:
    """The container and exec services, built in this one place: ``ContainerService``
    makes its ``ContainerContext`` (what every container operation takes) of exactly
    these. Then containers are reloaded from disk and running ones reattached.

    ``networking`` is used for create-time validation, rename, NetworkSettings and the
    networking steps of starts and exits. ``volumes`` is there before the reload, so
    ``--rm`` containers that exited while the daemon was down release their volumes.
    """
    if cgroups is None:
        cgroups = make_cgroup_manager(config.cgroup_driver, config.cgroup_parent)
    # dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1
    cgroupns = config.default_cgroupns_mode or (
        "private" if str(cgroups.version) == "2" else "host")
    settings = ContainerSettings(cgroupns_mode=cgroupns, init=config.init,
                                 init_path=config.init_path)
    steps = ContainerNetworkSteps(networking) if networking is not None else None
    containers = ContainerService(config.data_root, events, ImageBackendAdapter(images),
                                  ImageRwLayers(images), runtime, cgroups, settings=settings,
                                  networking=networking, network_steps=steps, volumes=volumes)
    if steps is not None:
        steps.set_requests(containers.sandbox_request)  # the records live in the service
    execs = ExecService(containers)
    attach_health(containers, execs)
    await containers.load()
    return containers, execs


class Engine:
    """The services; ``None`` only in an engine opened without them (API unit tests)."""

    images: ImageService | None = None
    containers: ContainerService | None = None
    execs: ExecService | None = None
    networking: NetworkService | None = None
    volumes: VolumeService | None = None

    def __init__(self, config: DaemonConfig, events: EventBus, engine_id: str) -> None:
        self.config = config
        self.events = events
        self.engine_id = engine_id
        self.started_at_ns = time.time_ns()
        self._host: HostFacts | None = None
        self._init: InitBinary | None = None
        self._supervisor: SupervisorClient | None = None
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, config: DaemonConfig, *, services: bool = True) -> Engine:
        """Prepare the data and exec roots (0700) and start the engine's services.

        ``services=False`` gives an engine with only the event bus and host facts, for
        tests of the API layer that must not touch bridges, cgroups or the supervisor."""
        ensure_private_dir(config.data_root)
        ensure_private_dir(config.exec_root)
        engine = cls(config, EventBus(), _load_or_create_engine_id(config.data_root))
        if services:
            await engine._open_services()
        return engine

    async def _open_services(self) -> None:
        config, events = self.config, self.events
        check_root_is_a_mount()
        self.images = ImageService(config.data_root, events)
        self.images.configure_registries(config.insecure_registries, config.registry_mirrors)
        self._supervisor = await connect_or_spawn(config.exec_root)
        self._watch_supervisor(self._supervisor)
        networking = self.networking = await NetworkService.open(config, events)
        self.volumes = VolumeService.open(config.data_root, events)
        # the container service runs the networking steps of starts and exits itself
        containers, self.execs = await open_container_services(
            config, events, self.images, self._supervisor, None, networking,
            ContainerVolumes(self.volumes),
        )
        self.containers = containers
        networking.set_container_directory(ContainerDirectoryAdapter(containers))
        await containers.start_restart_policy_containers()

    def _watch_supervisor(self, client: SupervisorClient) -> None:
        def lost() -> None:
            if self._closing:
                return
            task = asyncio.get_running_loop().create_task(self._replace_supervisor())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        client.on_lost(lost)

    async def _replace_supervisor(self) -> None:
        """A supervisor died: start another at once (until it answers, starts and execs
        fail fast with "supervisor connection lost"), account for what the old one ran,
        and let restart policies take it from there."""
        log.error("the supervisor exited unexpectedly; starting a new one (its containers "
                  "are recorded as exited with 255)")
        client = await connect_or_spawn(self.config.exec_root)
        self._supervisor = client
        self._watch_supervisor(client)
        if self.containers is not None:
            await self.containers.adopt_runtime(client)
        if self.execs is not None:
            self.execs.runtime_lost(time.time_ns())

    async def close(self) -> None:
        """Stop running containers, then the services.

        With live-restore, running containers are left to the supervisor (which keeps
        running, holding their stdio and exit reports) and keep their networking; the
        next :meth:`open` re-adopts them."""
        self._closing = True
        live_restore = self.config.live_restore
        if self.containers is not None and not live_restore:
            await self.containers.shutdown(SHUTDOWN_STOP_TIMEOUT)
        if self.networking is not None:
            await self.networking.close(keep_running=live_restore)
        if self._supervisor is not None and live_restore:
            await self._supervisor.close()
        elif self._supervisor is not None:
            try:
                # exits of the containers just stopped may still be in acknowledgement
                for _ in range(20):
                    if await self._supervisor.shutdown_if_idle():
                        break
                    await asyncio.sleep(0.05)
                else:
                    log.info("supervisor keeps running: it still has processes")
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                log.warning("supervisor shutdown: %s", exc)
            await self._supervisor.close()
        # trees of removed containers still being deleted in the background
        await asyncio.get_running_loop().run_in_executor(None, TRASH.drain)

    @property
    def host(self) -> HostFacts:
        if self._host is None:
            driver = getattr(getattr(self.containers, "cgroups", None), "driver", "cgroupfs")
            self._host = replace(read_host_facts(), cgroup_driver=str(driver))
        return self._host

    @property
    def init_binary(self) -> InitBinary:
        """The ``--init`` binary as ``docker info`` reports it (looked up once)."""
        if self._init is None:
            self._init = resolve_init(self.config.init_path)
        return self._init

    def inventory(self) -> Inventory:
        if self.containers is None or self.images is None:
            return Inventory()
        containers = list(self.containers.store)
        running = sum(1 for c in containers if c.state.running and not c.state.paused)
        paused = sum(1 for c in containers if c.state.paused)
        return Inventory(
            containers=len(containers),
            running=running,
            paused=paused,
            stopped=len(containers) - running - paused,
            images=len(self.images.store.ids()),
        )

    def disk_usage(self) -> DiskUsage:
        if self.containers is None or self.images is None:
            return DiskUsage()
        containers = self.containers
        return DiskUsage(
            layers_size=self.images.layers_size(),
            images=tuple(self.images.list_images(all=True, shared_size=True, container_count=True)),
            containers=tuple((c, containers.sizes(c)) for c in containers.store),
            volumes=tuple(self.volumes.usage()) if self.volumes is not None else (),
        )
