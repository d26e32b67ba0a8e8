"""Container lifecycle: create, start, stop, kill, restart, wait, remove, rename, attach,
logs, resize, commit; exit handling (exit code, OOM, cleanup, AutoRemove, restart policy).

Exec lives in ``runtime.containers.execs`` and listing in ``runtime.containers.listing``;
both work on this service's store and live-process table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal as _signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.faults import fault_point
from runtime.containers.attach import (
    DEFAULT_DETACH_KEYS, AttachOptions, Attachment, parse_detach_keys,
)
from runtime.containers.etcfiles import write_etc_files
from runtime.containers.model import (
    Container, ContainerConfig, HostConfig, LogConfig, new_id, validate_name,
)
from runtime.containers.links import without_link
from runtime.containers.names import generate_name
from runtime.containers.ports import CgroupBackend, ImageBackend, NetworkSteps, RwLayerStore
from runtime.containers.rootfs import RootfsAccess
from runtime.signals import parse_kill_signal, parse_signal
from runtime.containers.spec import (
    Peers, command_line, compose_spec, merge_image_config, user_mounts,
)
from runtime.containers.state import ExitStatus, WaitCondition
from runtime.containers.stdio import Chunk, StdioFanout, Subscription
from runtime.containers.store import ContainerStore
from runtime.containers.validate import validate_host_config
from runtime.errors import (
    Conflict, ContainerNotFound, InvalidParameter, NotFound, NotModified, SystemError_,
)
from runtime.events import EventBus
from runtime.volumes.mountspec import is_volume_bind
from runtime.logs.driver import (
    LogBatch, LogDriver, LogDriverInitFailed, LogMessage, NoneDriver, ReadOptions, json_file_options,
    open_reader,
)
from runtime.logs.jsonfile import JsonFileDriver
from runtime.system import initbin
from runtime.process.contract import ExitReport, ProcessRuntime, StartedProcess, StartFailed

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10  # dockerd's Kill waits this long for the exit after SIGKILL


@dataclass(frozen=True, slots=True)
class CreateRequest:
    config: ContainerConfig
    host_config: HostConfig
    name: str = ""
    platform: str = ""
    endpoints: Mapping[str, Any] = field(default_factory=dict)  # NetworkingConfig.EndpointsConfig


@dataclass(frozen=True, slots=True)
class CreateResult:
    id: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogsOptions:
    stdout: bool = False
    stderr: bool = False
    follow: bool = False
    since_ns: int = 0
    until_ns: int = 0
    timestamps: bool = False
    tail: int | None = None
    details: bool = False


@dataclass(frozen=True, slots=True)
class LogsStream:
    """Validated logs request: ``tty`` picks raw vs multiplexed framing. Messages come in
    batches (whole blocks of the log file, single lines when following) so they can be
    written in bulk."""

    tty: bool
    batches: AsyncIterator[LogBatch]

    async def messages(self) -> AsyncIterator[LogMessage]:
        async for batch in self.batches:
            for message in (batch if isinstance(batch, list) else batch.messages()):
                yield message


@dataclass(frozen=True, slots=True)
class CommitOptions:
    repo: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    config: ContainerConfig | None = None  # --change already applied (builder.changes)
    pause: bool = True


@dataclass(slots=True)
class Live:
    """Runtime-only state of a container (never persisted).

    ``starting``: a start is between ``runtime.start`` and ``set_running``; an exit of
    its process meanwhile is kept in ``start_exit`` and handled by that start.
    ``exit_task``: the exit transition in progress (see ``_handle_exit``).
    ``restart_task`` / ``backing_off``: the restart policy's back-off, then its start."""

    process: StartedProcess | None = None
    fanout: StdioFanout | None = None
    cgroup: Any = None
    pending: list[Callable[[StdioFanout | None], None]] = field(default_factory=list)
    starting: bool = False
    start_exit: ExitReport | None = None
    exit_task: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    backing_off: bool = False
    restart_delay: float = 0.0
    # one lifecycle operation at a time (dockerd's container lock); exits never take it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ContainerService:
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
    ) -> None:
        self.store = ContainerStore(data_root / "containers")
        self.events = events
        self.images = images
        self.layers = layers
        self.runtime = runtime
        self.cgroups = cgroups
        # dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1
        self.default_cgroupns_mode = (
            "private" if str(getattr(cgroups, "version", "1")) == "2" else "host")
        self._all_caps = all_caps
        self._masked_default = masked_default
        self.live: dict[str, Live] = {}
        self.networking: Any = None  # runtime.network.service.NetworkService, when wired
        self.volumes: Any = None  # runtime.volumes.containers.ContainerVolumes, when wired
        self.network_steps: NetworkSteps | None = None
        self.default_init = False  # the daemon's --init
        self.init_path = ""  # the daemon's --init-path ("": docker-init, else Debian's tini)
        self._shutting_down = False
        # exits delivered before load() read the records (replayed by load)
        self._loaded = False
        self._unclaimed: list[ExitReport] = []
        self._exec_exit: Callable[[ExitReport], None] | None = None
        self.health: Any = None  # runtime.containers.health.HealthMonitors, when wired
        # roots of stopped containers opened for docker cp/export (a start waits for them)
        self.rootfs = RootfsAccess()
        runtime.on_exit(self._on_exit)
        images.set_usage_checker(self.image_users, self.image_running_users)

    # --- startup ----------------------------------------------------------------------

    async def load(self) -> None:
        """Load records from disk and reattach to processes that are still running."""
        self.store.load()
        self._loaded = True
        for container in self.store:
            state = container.state
            if state.restarting:
                # the daemon stopped during a back-off: exited (the policy applies at boot)
                state.set_stopped(state.exit_code, state.finished_at_ns, state.oom_killed)
                self.store.save(container)
        if self.volumes is not None:
            # before exits seen while away are applied: their removal releases volumes
            self.volumes.restore(self.store)
        unclaimed, self._unclaimed = self._unclaimed, []
        for report in unclaimed:
            self._on_exit(report)
        running: dict[str, StartedProcess] = {}
        try:
            for container_id, exec_id, process in await self.runtime.running():
                if exec_id is None:
                    running[container_id] = process
                else:
                    for fd in {process.stdin, process.stdout, process.stderr} - {None}:
                        os.close(fd)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - a fresh supervisor has nothing to report
            log.warning("could not list running processes: %s", exc)
        ended: list[tuple[Container, ExitReport]] = []
        for container in self.store:
            found = running.pop(container.id, None)
            live = self.live_of(container)
            if found is not None and container.state.running:
                process = found
                live.process = process
                live.fanout = StdioFanout(process, self._log_driver(container))
                container.state.pid = process.pid
                if self.health is not None:
                    self.health.container_started(container)
            elif container.state.running and live.exit_task is None:
                # exited while we were away, and the supervisor kept no report (handled
                # by _on_exit when it did): the process is simply gone
                ended.append((container, ExitReport(
                    container.id, None, container.state.pid, 255, time.time_ns())))
        for process in running.values():
            await self.runtime.signal(process.pid, _signal.SIGKILL)
        for container in self.store:
            if not container.state.running:
                # a start the daemon died in the middle of: its process never became the
                # container's, so it must not run on where no API call can see it
                self._kill_cgroup_members(container)
        for container, report in ended:
            if self.live_of(container).exit_task is None:
                await self._handle_exit(container, self.live_of(container), report)
        # exits reported while away: handled before the engine serves requests
        handling = [t for live in self.live.values() if (t := live.exit_task) is not None]
        if handling:
            await asyncio.wait(handling)

    async def start_restart_policy_containers(self) -> None:
        """At daemon start: start stopped containers whose policy says so (``always``, and
        ``unless-stopped`` unless a user stopped them), as dockerd does. Call once the
        engine is fully wired (networking)."""
        for container in self.store:
            policy = container.host_config.restart_policy.name
            wanted = policy == "always" or (
                policy == "unless-stopped" and not container.has_been_manually_stopped)
            if wanted and not container.state.running and not container.state.dead:
                try:
                    async with self.live_of(container).lock:
                        await self._start(container)
                except Exception as exc:  # noqa: BLE001 - recorded in State.Error
                    log.warning("restarting %s at boot failed: %s", container.id[:12], exc)

    def set_exec_exit_handler(self, handler: Callable[[ExitReport], None]) -> None:
        self._exec_exit = handler

    def set_health(self, monitors: Any) -> None:
        self.health = monitors

    def set_networking(self, networking: Any) -> None:
        """Use the network service for create-time validation, rename, NetworkSettings and
        the networking steps of starts and exits."""
        from runtime.network.hooks import ContainerNetworkSteps
        self.networking = networking
        self.network_steps = ContainerNetworkSteps(
            networking, lambda cid: self._sandbox_request(self.get(cid)))

    def set_network_steps(self, steps: NetworkSteps | None) -> None:
        self.network_steps = steps

    def set_volumes(self, volumes: Any) -> None:
        """Mount volumes through ``runtime.volumes.containers.ContainerVolumes``; the
        containers already loaded (or loaded later by :meth:`load`) register their
        references on it."""
        self.volumes = volumes
        volumes.restore(self.store)

    def _sandbox_request(self, container: Container) -> Any:
        from runtime.network.hooks import sandbox_request_for
        return sandbox_request_for(container, self.get)

    def network_settings(self, container: Container) -> dict[str, Any] | None:
        """``NetworkSettings`` from the network service (None without one)."""
        if self.networking is None:
            return None
        if container.state.running:
            live = self.networking.settings(container.id)
            if live is not None:
                return dict(live)
        return dict(self.networking.inactive_settings(self._sandbox_request(container)))

    # --- lookups ----------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def live_of(self, container: Container) -> Live:
        return self.live.setdefault(container.id, Live())

    def sizes(self, container: Container) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): bytes in the writable layer, and that plus the image."""
        try:
            rw = self.layers.size(container.id)
        except OSError:
            rw = 0
        try:
            image_size = int(getattr(self.images.get(container.image_id), "size", 0) or 0)
        except Exception:  # noqa: BLE001 - the image may be gone (rmi -f): count nothing
            image_size = 0
        return rw, rw + image_size

    def image_users(self, image_id: str) -> list[str]:
        """The ``rmi`` usage checker: containers created from ``image_id``."""
        return [c.id for c in self.store if c.image_id == image_id]

    def image_running_users(self, image_id: str) -> list[str]:
        return [c.id for c in self.store if c.image_id == image_id and c.state.running]

    def _event(self, container: Container, action: str, **attributes: str) -> None:
        self.events.publish("container", action, container.id,
                            container.event_attributes(**attributes))

    # --- create -----------------------------------------------------------------------

    async def create(self, request: CreateRequest) -> CreateResult:
        config, host = request.config, request.host_config
        if not config.image:
            raise InvalidParameter("No image specified")  # dockerd: config.Image is required
        validate_host_config(host)
        if config.stop_signal:
            parse_signal(config.stop_signal)  # dockerd's verifyContainerSettings
        if host.cgroup_parent and getattr(self.cgroups, "driver", "") == "systemd":
            from runtime.linux.cgroups_systemd import SLICE_ERROR
            from runtime.linux.systemd import valid_slice
            if not valid_slice(host.cgroup_parent):
                raise InvalidParameter(SLICE_ERROR)
        image = self.images.get(config.image)
        config = merge_image_config(config, self.images.image_config(image))
        argv = command_line(config)
        if not argv:
            raise InvalidParameter("No command specified")
        container_id = new_id()
        if not config.hostname:
            config = replace(config, hostname=container_id[:12])
        host = _with_defaults(host, self.default_cgroupns_mode)
        if request.name:
            name = validate_name(request.name)
        else:
            name = self._generate_name()
        self.store.reserve_name(name, container_id)
        root = self.store.directory(container_id)
        volumes_prepared = False
        try:
            _, mount_points = user_mounts(host)
            root.mkdir(parents=True, exist_ok=False)
            os.chmod(root, 0o710)
            container = Container(
                id=container_id, name=name, created_ns=time.time_ns(), path=argv[0],
                args=tuple(argv[1:]), config=config, host_config=host,
                image_id=_image_id(image), root=root, mount_points=mount_points,
            )
            container.endpoints_config = {k: dict(v or {}) for k, v in request.endpoints.items()}
            warnings: list[str] = []
            if self.networking is not None:
                warnings = list(await self.networking.validate_sandbox(
                    self._sandbox_request(container)))
            container.rw_layer = self.layers.prepare(container_id, image)
            if self.volumes is not None:
                container.mount_points = await self.volumes.prepare(
                    container, mount_points, self.get)
                volumes_prepared = True
            elif any(is_volume_bind(b) for b in host.binds or ()) or any(
                    m.type == "volume" for m in host.mounts or ()):
                raise InvalidParameter("volumes are not available in this engine")
            write_etc_files(container)
            fault_point("create.before-record")
            self.store.add(container)
            self.store.save(container, host_config=True)
            fault_point("create.after-record")
        except BaseException:
            if volumes_prepared:
                self.volumes.release(container, remove_anonymous=True)
            self.store.release_name(name)
            with contextlib.suppress(Exception):
                self.layers.remove(container_id)
            import shutil
            shutil.rmtree(root, ignore_errors=True)
            raise
        self._event(container, "create")
        return CreateResult(container.id, tuple(warnings))

    def _generate_name(self) -> str:
        for attempt in range(20):
            name = "/" + generate_name(0 if attempt < 5 else attempt)
            if not self.store.name_in_use(name):
                return name
        return "/" + generate_name(99) + new_id()[:6]

    # --- start ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, ref: str) -> AsyncIterator[Container]:
        """``ref``'s container for one lifecycle operation at a time (dockerd's container
        lock), once an exit transition in progress is complete."""
        container = self.get(ref)
        async with self.live_of(container).lock:
            await self._settle(container)
            if self.store.find(container.id) is not container:
                raise ContainerNotFound(ref)  # removed meanwhile (rm, --rm)
            yield container

    async def start(self, ref: str) -> None:
        async with self._locked(ref) as container:
            state = container.state
            if state.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if state.running:
                raise NotModified("container already started")
            if state.removal_in_progress or state.dead:
                raise Conflict("container is marked for removal and cannot be started")
            self.live_of(container).restart_delay = 0.0  # a new restart manager, as dockerd
            await self._start(container)

    async def _start(self, container: Container, by_policy: bool = False) -> None:
        """Start the main process: (start paused -> attach networking -> resume) when a
        network namespace is set up, then record it running. An exit of the process
        before that is handled here, after ``set_running``, never concurrently.
        ``by_policy``: a restart policy's start, which keeps a stop or kill made meanwhile
        in force (dockerd's restart goroutine does not reset HasBeenManuallyStopped)."""
        while self.rootfs.busy(container.id):
            # its overlay is mounted privately for cp/export: never mount the upper dir twice
            await asyncio.sleep(0.05)
        live = self.live_of(container)
        host = container.host_config
        if container.log_driver == "json-file":
            try:
                json_file_options(host.log_config.config)
            except LogDriverInitFailed as exc:
                container.state.set_start_failed(128, str(exc))  # dockerd's code for it
                self.store.save(container)
                self._fail_pending(live)
                raise
        steps = self.network_steps
        cgroup = None
        process: StartedProcess | None = None
        live.starting, live.start_exit = True, None
        try:
            peers = self._peers(host)
            if self.cgroups is not None:
                cgroup = self.cgroups.create(container.id, _resources(host), host.cgroup_parent)
                fault_point("start.after-cgroup")
            dirs = tuple(getattr(cgroup, "dirs", ()) or ())
            write_etc_files(container)
            if self.volumes is not None:
                self.volumes.mount(container)
            spec = compose_spec(
                container, cgroup_dirs=dirs, peers=peers,
                cgroup_v2=str(getattr(self.cgroups, "version", "1")) == "2",
                all_caps=self._all_caps, masked_default=self._masked_default,
                init_path=self._init_path(host),
            )
            if steps is not None:
                spec = await steps.prepare(spec)
            process = await self.runtime.start(spec)
            fault_point("start.after-process")
            if cgroup is not None:
                getattr(self.cgroups, "started", lambda _handle: None)(cgroup)
            if spec.pause_before_exec:
                if steps is not None:
                    await steps.attach(spec, process.pid)
                # the init's own failures (exec not found...) surface here, unchanged
                await self.runtime.resume(container.id)
        except BaseException as exc:
            live.starting, live.start_exit = False, None
            await self._undo_start(container, process, cgroup)
            self._fail_pending(live)
            if isinstance(exc, StartFailed):
                container.state.set_start_failed(exc.exit_code, str(exc))
                self.store.save(container)
                if host.auto_remove:
                    asyncio.get_running_loop().create_task(self._auto_remove(container))
            raise
        fault_point("start.before-record")
        live.starting = False
        live.process = process
        live.cgroup = cgroup
        live.fanout = StdioFanout(process, self._log_driver(container))
        # attach sessions made before start subscribe now, before any output is read
        pending, live.pending = live.pending, []
        for callback in pending:
            callback(live.fanout)
        container.state.set_running(process.pid, time.time_ns())
        container.has_been_started = True
        if not by_policy:
            container.has_been_manually_stopped = False
        self.store.save(container)
        self._event(container, "start")
        if self.health is not None:
            self.health.container_started(container)
        early, live.start_exit = live.start_exit, None
        if early is not None:
            self._on_exit(early)

    async def _undo_start(self, container: Container, process: StartedProcess | None,
                          cgroup: Any) -> None:
        if process is not None:
            with contextlib.suppress(Exception):  # already gone when its init failed
                await self.runtime.signal(process.pid, _signal.SIGKILL)
            for fd in {process.stdin, process.stdout, process.stderr} - {None}:
                with contextlib.suppress(OSError):
                    os.close(fd)  # type: ignore[arg-type]
        if self.network_steps is not None:
            with contextlib.suppress(Exception):
                await self.network_steps.detach(container.id, None)
        self._release_cgroup(cgroup)
        if self.volumes is not None:
            self.volumes.unmount(container)

    def _init_path(self, host: HostConfig) -> str | None:
        """The init binary to run as PID 1 (dockerd: only in a private PID namespace)."""
        wanted = host.init if host.init is not None else self.default_init
        if not wanted or host.pid_mode not in ("", "private"):
            return None
        path = initbin.lookup(self.init_path)
        if path is None:
            name = self.init_path or initbin.DEFAULT_INIT_BINARY
            raise SystemError_(f'exec: "{name}": executable file not found in $PATH')
        return path

    def _fail_pending(self, live: Live) -> None:
        pending, live.pending = live.pending, []
        for callback in pending:
            callback(None)

    def _peers(self, host: HostConfig) -> Peers:
        def pid_of(mode: str) -> int | None:
            if not mode.startswith("container:"):
                return None
            peer = self.get(mode.partition(":")[2])
            if not peer.state.running:
                raise Conflict(f"cannot join namespace of a non running container: {peer.id}")
            return peer.state.pid
        return Peers(network=pid_of(host.network_mode), ipc=pid_of(host.ipc_mode),
                     pid=pid_of(host.pid_mode))

    def _log_driver(self, container: Container) -> LogDriver:
        config = container.host_config.log_config
        if container.log_driver == "none":
            return NoneDriver()
        return JsonFileDriver.from_options(container.log_path, config.config)

    def _cgroup_of(self, container: Container) -> Any:
        """The handle of the container's cgroup by its ID (it may exist or not)."""
        handle_for = getattr(self.cgroups, "handle_for", None)
        return handle_for(container.id, container.host_config.cgroup_parent) if handle_for else None

    def _kill_cgroup_members(self, container: Container) -> None:
        """No process outlives its record: kill whatever is still in the container's
        cgroup (e.g. a process a crashed daemon started but never recorded), then remove
        the cgroup."""
        cgroup = self._cgroup_of(container)
        if cgroup is None:
            return
        if killed := self._kill_all(container, cgroup):
            log.warning("container %s: killed %d process(es) left in its cgroup",
                        container.id[:12], len(killed))
        self._release_cgroup(cgroup)

    def _kill_all(self, container: Container, cgroup: Any) -> list[int]:
        """SIGKILL everything in the container's cgroup (none can fork away); the pids."""
        kill_all = getattr(self.cgroups, "kill_all", None)
        if cgroup is None or kill_all is None:
            return []
        try:
            return list(kill_all(cgroup))
        except OSError as exc:
            log.warning("container %s: killing what is in its cgroup: %s", container.id[:12], exc)
            return []

    def _release_cgroup(self, cgroup: Any) -> None:
        if cgroup is not None and self.cgroups is not None:
            try:
                self.cgroups.remove(cgroup)
            except OSError as exc:
                log.warning("removing cgroup: %s", exc)

    async def adopt_runtime(self, runtime: ProcessRuntime) -> None:
        """``runtime`` replaces a supervisor that died. What the old one started is nobody's
        child now, so no exit status can ever be had for it: each running container is
        killed with everything in its cgroup and goes through the exit transition as
        exited with 255 (what dockerd records when a container's process is lost), after
        which restart policies apply as to any exit."""
        self.runtime = runtime
        runtime.on_exit(self._on_exit)
        now = time.time_ns()
        for container in list(self.store):
            live = self.live.get(container.id)
            if live is None or live.process is None or not container.state.running:
                continue
            self._kill_all(container, live.cgroup if live.cgroup is not None else self._cgroup_of(container))
            self._on_exit(ExitReport(container.id, None, live.process.pid, 255, now))

    # --- exit handling ----------------------------------------------------------------

    def _on_exit(self, report: ExitReport) -> None:
        """The one subscriber to the runtime's exits: execs go to the exec service; a
        container's main process gets one exit transition (``_handle_exit``)."""
        if report.exec_id is not None:
            if self._exec_exit is not None:
                self._exec_exit(report)
            return
        container = self.store.find(report.container_id)
        if container is None:
            if not self._loaded:
                self._unclaimed.append(report)
            else:
                log.debug("exit of pid %d: container %s is gone", report.pid,
                          report.container_id[:12])
            return
        live = self.live_of(container)
        state = container.state
        if live.starting:
            live.start_exit = report  # the start in progress handles it when it is done
            return
        ours = live.process is not None and live.process.pid == report.pid
        # a process that exited while the daemon was away (reported at reconnection)
        away = (live.process is None and state.running and not state.restarting
                and state.pid == report.pid)
        if not (ours or away) or (live.exit_task is not None and not live.exit_task.done()):
            log.debug("stale exit report for %s (pid %d)", container.id[:12], report.pid)
            return
        live.exit_task = asyncio.get_running_loop().create_task(
            self._handle_exit(container, live, report))

    async def _handle_exit(self, container: Container, live: Live, report: ExitReport) -> None:
        """The exit transition, in order (as dockerd's handleContainerExit): release what
        the run held (output drained, cgroup, volumes, networking), then record the new
        state (stopped, or restarting when the policy says so) and wake waiters, then the
        ``die`` event, then auto-remove or the restart back-off. API calls that must not
        see a half-finished transition wait for this task (``_settle``)."""
        if self.health is not None:
            self.health.container_stopped(container)
        # output written just before exit must reach the log and the clients before
        # waiters learn about the exit (docker-py reads the logs right after wait)
        if live.fanout is not None:
            await live.fanout.drain()
        oom = False
        # a container reattached after a daemon restart has no handle yet: derive it
        cgroup = live.cgroup if live.cgroup is not None else self._cgroup_of(container)
        if cgroup is not None and self.cgroups is not None:
            try:
                oom = self.cgroups.oom_killed(cgroup)
            except OSError:
                oom = False
            self._release_cgroup(cgroup)
        live.process = None
        live.fanout = None
        live.cgroup = None
        if self.volumes is not None:
            self.volumes.unmount(container)
        if self.network_steps is not None:
            try:
                await self.network_steps.detach(container.id, report.pid)
            except Exception as exc:  # noqa: BLE001 - the exit is recorded regardless
                log.warning("detaching networking of %s: %s", container.id[:12], exc)
        started = container.state.started_at_ns
        restart = (not container.host_config.auto_remove
                   and self._should_restart(container, report.exit_code))
        if restart:
            container.restart_count += 1
            container.state.set_restarting(report.exit_code, report.finished_at_ns, oom)
        else:
            container.state.set_stopped(report.exit_code, report.finished_at_ns, oom_killed=oom)
        if not container.host_config.auto_remove:  # removed right below otherwise
            self.store.save(container)
        if oom:
            self._event(container, "oom")
        duration = max(0, (report.finished_at_ns - started) // 1_000_000_000)
        self._event(container, "die", exitCode=str(report.exit_code),
                    execDuration=str(duration))
        if container.host_config.auto_remove:
            await self._auto_remove(container)
        elif restart:
            live.backing_off = True
            live.restart_task = asyncio.get_running_loop().create_task(
                self._restart_later(container, live, (report.finished_at_ns - started) / 1e9))

    async def _settle(self, container: Container) -> None:
        """Wait for an exit transition in progress (not when called from within it)."""
        live = self.live.get(container.id)
        task = live.exit_task if live is not None else None
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.wait([task])

    def _should_restart(self, container: Container, exit_code: int) -> bool:
        policy = container.host_config.restart_policy
        if (container.has_been_manually_stopped or container.state.removal_in_progress
                or self._shutting_down):
            return False
        if policy.name in ("always", "unless-stopped"):
            return True
        if policy.name == "on-failure" and exit_code != 0:
            return (policy.maximum_retry_count == 0
                    or container.restart_count < policy.maximum_retry_count)
        return False

    async def _restart_later(self, container: Container, live: Live, ran: float) -> None:
        """dockerd's restart manager: 100ms back-off doubling up to a minute, reset after
        a run of 10s or more. The container is ``restarting`` meanwhile; a stop, kill or
        rm cancels the back-off (:meth:`_cancel_restart`), not a start in progress."""
        if ran >= 10:
            live.restart_delay = 0.0
        live.restart_delay = 0.1 if live.restart_delay == 0 else min(live.restart_delay * 2, 60.0)
        await asyncio.sleep(live.restart_delay)
        async with live.lock:  # still cancellable (backing off) while waiting for it
            live.backing_off = False
            if (container.has_been_manually_stopped or container.state.removal_in_progress
                    or not container.state.restarting
                    or self.store.find(container.id) is not container):
                return
            try:
                await self._start(container, by_policy=True)
            except Exception as exc:  # noqa: BLE001 - recorded in State.Error
                log.warning("restarting %s failed: %s", container.id[:12], exc)
                if container.state.restarting:
                    container.state.set_stopped(container.state.exit_code,
                                                container.state.finished_at_ns)
                    self.store.save(container)

    async def _cancel_restart(self, container: Container) -> None:
        """Cancel a restart back-off: the container is exited with its last exit code (a
        restart already starting is let finish: the caller then stops that run)."""
        live = self.live.get(container.id)
        task = live.restart_task if live is not None else None
        if live is not None and task is not None:
            live.restart_task = None
            if live.backing_off:
                task.cancel()
                live.backing_off = False
            if task is not asyncio.current_task():
                await asyncio.wait([task])
        state = container.state
        if state.restarting and live is not None and live.process is None:
            state.set_stopped(state.exit_code, state.finished_at_ns, state.oom_killed)
            self.store.save(container)

    async def _auto_remove(self, container: Container) -> None:
        try:  # from the exit transition, which never takes the lifecycle lock
            await self._remove(container, container.id, force=True, volumes=True)
        except Exception as exc:  # noqa: BLE001 - already removed by a client, or similar
            log.debug("auto-remove of %s: %s", container.id[:12], exc)

    # --- stop / kill / restart --------------------------------------------------------

    async def stop(self, ref: str, signal: str | None = None, timeout: int | None = None) -> None:
        async with self._locked(ref) as container:
            if not container.state.running:
                raise NotModified("container already stopped")
            await self._stop(container, signal, timeout)

    async def shutdown(self, timeout: int | None = None) -> None:
        """Daemon shutdown without live-restore: stop every running container like
        ``docker stop`` but without marking it manually stopped, so ``unless-stopped``
        and ``always`` containers come back at the next start."""
        self._shutting_down = True
        running = [c for c in self.store if c.state.running]

        async def stop(container: Container) -> None:
            async with self.live_of(container).lock:
                await self._stop(container, None, timeout, manual=False)

        results = await asyncio.gather(*(stop(c) for c in running), return_exceptions=True)
        for container, result in zip(running, results):
            if isinstance(result, Exception):
                log.warning("stopping %s at shutdown: %s", container.id[:12], result)

    async def _stop(self, container: Container, signal: str | None, timeout: int | None,
                    manual: bool = True) -> None:
        sig = parse_signal(signal or container.config.stop_signal or "SIGTERM")
        if timeout is None:
            timeout = (container.config.stop_timeout if container.config.stop_timeout is not None
                       else DEFAULT_STOP_TIMEOUT)
        if manual:
            container.has_been_manually_stopped = True
        await self._cancel_restart(container)
        stopped = container.state.wait(WaitCondition.NOT_RUNNING)
        if container.state.running:
            await self._signal(container, sig)
            try:
                await asyncio.wait_for(asyncio.shield(stopped), None if timeout < 0 else timeout)
            except TimeoutError:
                if container.state.running:
                    await self._signal(container, _signal.SIGKILL)
                await stopped
        if self.store.find(container.id) is container:  # not auto-removed meanwhile
            self.store.save(container)
        self._event(container, "stop")

    async def _signal(self, container: Container, sig: int) -> None:
        live = self.live_of(container)
        if live.process is None:
            return
        await self.runtime.signal(live.process.pid, sig)
        self._event(container, "kill", signal=str(sig))
        if container.state.paused:
            from runtime.containers.freeze import resume_after_signal
            await resume_after_signal(self, container, sig)

    async def kill(self, ref: str, signal: str = "") -> None:
        """dockerd's kill: SIGKILL (the default) returns once the container has stopped;
        another signal returns once sent. A kill that ends the run (SIGKILL, the stop
        signal, or any signal when none is configured) cancels the restart policy."""
        sig = parse_kill_signal(signal or "SIGKILL")
        async with self._locked(ref) as container:
            await self._kill(container, ref, sig)

    async def _kill(self, container: Container, ref: str, sig: int) -> None:
        state = container.state
        if not state.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        stop_signal = container.config.stop_signal
        if sig == _signal.SIGKILL or not stop_signal or parse_signal(stop_signal) == sig:
            container.has_been_manually_stopped = True
            await self._cancel_restart(container)
        elif state.restarting:
            container.has_been_manually_stopped = True
        if not state.running or state.restarting:
            return  # nothing to signal: dockerd only tells the restart monitor
        stopped = state.wait(WaitCondition.NOT_RUNNING)
        await self._signal(container, sig)
        if sig != _signal.SIGKILL:
            stopped.cancel()
            return
        try:
            await asyncio.wait_for(asyncio.shield(stopped), KILL_WAIT)
        except TimeoutError:
            log.warning("container %s did not exit within %ds of SIGKILL", container.id[:12],
                        KILL_WAIT)

    async def restart(self, ref: str, signal: str | None = None, timeout: int | None = None) -> None:
        async with self._locked(ref) as container:
            if container.state.running:
                await self._stop(container, signal, timeout)
            await self._settle(container)
            if self.store.find(container.id) is not container:
                raise ContainerNotFound(ref)  # --rm: removed when it stopped
            self.live_of(container).restart_delay = 0.0
            await self._start(container)
            self._event(container, "restart")

    # --- wait -------------------------------------------------------------------------

    def wait(self, ref: str, condition: WaitCondition) -> asyncio.Future[ExitStatus]:
        """Look up now (404 before any byte is sent); the future resolves later."""
        return self.get(ref).state.wait(condition)

    # --- remove / rename --------------------------------------------------------------

    def _remove_link(self, ref: str) -> None:
        """``DELETE /containers/<parent>/<alias>?link=1``: drop the parent's ``--link``."""
        parent_ref, sep, alias = ref.strip("/").rpartition("/")
        if not sep:  # dockerd answers this with a plain (500) error, for an existing container
            self.get(ref)
            raise SystemError_("Conflict, cannot remove the default link name of the container")
        parent = self.get(parent_ref)
        links = without_link(parent.host_config.links, alias)
        if links is None:
            raise NotFound(f"No such container: {ref}")
        parent.host_config = replace(parent.host_config, links=links)
        self.store.save(parent, host_config=True)

    async def remove(self, ref: str, force: bool = False, volumes: bool = False,
                     link: bool = False) -> None:
        if link:
            self._remove_link(ref)
            return
        # e.g. kill, then rm: the exit transition is complete first
        async with self._locked(ref) as container:
            await self._remove(container, ref, force, volumes)

    async def _remove(self, container: Container, ref: str, force: bool, volumes: bool) -> None:
        state = container.state
        if state.running and not force:
            # dockerd 28 (daemon/delete.go): a restarting container counts as running
            reason = ("container is paused and must be unpaused first" if state.paused else
                      f"container is {state.status}: stop the container before removing or "
                      "force remove")
            raise Conflict(f'cannot remove container "{ref}": {reason}')
        state.set_removal_in_progress(container.id)
        try:
            await self._cancel_restart(container)
            if state.running:
                container.has_been_manually_stopped = True
                stopped = state.wait(WaitCondition.NOT_RUNNING)
                await self._signal(container, _signal.SIGKILL)
                await stopped
            await self._settle(container)
        except BaseException:
            state.reset_removal_in_progress()
            raise
        self._kill_cgroup_members(container)
        fault_point("remove.before-layer")
        try:
            self.layers.remove(container.id)
        except OSError as exc:
            state.reset_removal_in_progress()
            state.set_dead()
            self.store.save(container)
            raise SystemError_(f"unable to remove filesystem for {container.id}: {exc}") from exc
        fault_point("remove.after-layer")
        self.store.remove(container)
        self.live.pop(container.id, None)
        if self.volumes is not None:
            self.volumes.release(container, remove_anonymous=volumes)
        state.set_removed()
        self._event(container, "destroy")

    async def rename(self, ref: str, new_name: str) -> None:
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        container = self.get(ref)
        canonical = validate_name(new_name)
        old = container.name
        if canonical == old:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        self.store.reserve_name(canonical, container.id)
        container.name = canonical
        self.store.release_name(old)
        self.store.save(container)
        if self.networking is not None and container.state.running:
            await self.networking.rename_container(container.id, canonical.lstrip("/"))
        self._event(container, "rename", oldName=old)

    # --- attach / logs / resize -------------------------------------------------------

    def attach(self, ref: str, options: AttachOptions) -> Attachment:
        """Validate and set up an attach session (the API layer hijacks afterwards)."""
        container = self.get(ref)
        state = container.state
        if state.paused:
            raise Conflict(f"You cannot attach to a paused container, unpause it first")
        if state.restarting:
            raise Conflict("You cannot attach to a restarting container, wait until it is running")
        try:
            keys = (parse_detach_keys(options.detach_keys) if options.detach_keys
                    else DEFAULT_DETACH_KEYS)
        except InvalidParameter:
            raise InvalidParameter(f"Invalid detach keys ({options.detach_keys}) provided") from None
        if options.stdin and not container.config.open_stdin:
            options = replace(options, stdin=False)
        history = None
        live = self.live_of(container)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[StdioFanout, Subscription[Chunk]] | None] = loop.create_future()

        def subscribe(fanout: StdioFanout | None) -> None:
            if future.done():
                return
            if fanout is None:
                future.set_result(None)
            else:
                future.set_result((fanout, fanout.subscribe(options.stdout, options.stderr)))

        if options.logs and container.log_driver == "json-file":
            if live.fanout is not None and not live.fanout.closed:
                live.fanout.read_pending()
            history = _as_chunks(open_reader("json-file", container.log_path).read(ReadOptions()),
                                 options.stdout, options.stderr)
        if not options.stream:
            future.set_result(None)
        elif live.fanout is not None and not live.fanout.closed:
            subscribe(live.fanout)
        else:
            live.pending.append(subscribe)  # e.g. docker run / start -a: attach, then start
        self._event(container, "attach")
        return Attachment(
            tty=container.config.tty, subscription=future, stdin=options.stdin,
            close_stdin_on_eof=container.config.stdin_once, detach_keys=keys, history=history,
        )

    def logs(self, ref: str, options: LogsOptions) -> LogsStream:
        container = self.get(ref)
        if not (options.stdout or options.stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        if options.since_ns and options.until_ns and options.until_ns < options.since_ns:
            raise InvalidParameter("invalid since and until values: since must be before until")
        reader = open_reader(container.log_driver, container.log_path)
        live = self.live.get(container.id)
        if live is not None and live.fanout is not None and not live.fanout.closed:
            live.fanout.read_pending()
        follow_sub = None
        if options.follow and live is not None and live.fanout is not None and not live.fanout.closed:
            # subscribe and snapshot in one synchronous step: every line exactly once
            follow_sub = live.fanout.subscribe_lines(options.stdout, options.stderr)
        past = reader.read_batches(ReadOptions(tail=options.tail, since_ns=options.since_ns,
                                               until_ns=options.until_ns,
                                               stamps=options.timestamps))
        return LogsStream(container.config.tty,
                          _logs_iter(past, follow_sub, options))

    def resize(self, ref: str, height: int, width: int) -> None:
        container = self.get(ref)
        live = self.live.get(container.id)
        if not container.state.running or live is None or live.fanout is None:
            raise Conflict(f"Container {container.id} is not running")
        live.fanout.resize(height, width)
        self._event(container, "resize", height=str(height), width=str(width))

    # --- commit -----------------------------------------------------------------------

    async def commit(self, ref: str, options: CommitOptions) -> str:
        container = self.get(ref)
        if container.rw_layer is None:
            raise Conflict(f"container {container.id} has no writable layer")
        config = container.config
        if options.config is not None:
            config = _merge_commit_config(options.config, config)
        repo_tag = None
        if options.repo:
            repo_tag = f"{options.repo}:{options.tag or 'latest'}"
        image_config = commit_image_config(config)
        # dockerd freezes a running container while its layer is read (commit --pause)
        pause = (options.pause and container.state.running and not container.state.paused
                 and self.cgroups is not None)
        if pause:
            from runtime.containers import freeze
            try:
                await freeze.pause(self, container.id)
            except (SystemError_, Conflict):
                exiting = self.live_of(container).exit_task
                if container.state.running and (exiting is None or exiting.done()):
                    raise
                # it exited or is exiting meanwhile (its cgroup released while the freeze was
                # on the way): its layer no longer changes
                pause = False
        try:
            image_id = await self.images.commit(container.image_id, container.rw_layer.upperdir,
                                                image_config, repo_tag, options.comment,
                                                options.author, container.id)
            attributes = {"comment": options.comment, "imageID": image_id,
                          "imageRef": repo_tag or ""}
            self._event(container, "commit", **attributes)
        finally:
            if pause and container.state.paused and container.state.running:
                await freeze.unpause(self, container.id)
        return image_id


# --- helpers -------------------------------------------------------------------------------


async def _as_chunks(messages: AsyncIterator[LogMessage], stdout: bool,
                     stderr: bool) -> AsyncIterator[LogMessage]:
    async for message in messages:
        if (message.stream == "stdout" and stdout) or (message.stream == "stderr" and stderr):
            yield message


async def _logs_iter(past: AsyncIterator[LogBatch],
                     follow: Subscription[LogMessage] | None,
                     options: LogsOptions) -> AsyncIterator[LogBatch]:
    streams = {s for s, on in (("stdout", options.stdout), ("stderr", options.stderr)) if on}
    try:
        async for batch in past:
            if len(streams) < 2:
                batch = (batch.only(*streams) if not isinstance(batch, list)
                         else [m for m in batch if m.stream in streams])
            if len(batch):
                yield batch
        if follow is None:
            return
        async for first in follow:
            batch = [first, *follow.ready()]
            if options.since_ns:
                batch = [m for m in batch if m.time_ns >= options.since_ns]
            late = next((i for i, m in enumerate(batch) if options.until_ns
                         and m.time_ns > options.until_ns), None)
            if late is not None:
                if late:
                    yield batch[:late]
                return
            if batch:
                yield batch
    finally:
        if follow is not None:
            follow.close()


def _image_id(image: Any) -> str:
    image_id = image.id if hasattr(image, "id") else str(image["Id"])
    return image_id if image_id.startswith("sha256:") else "sha256:" + image_id


def _with_defaults(host: HostConfig, cgroupns_mode: str = "host") -> HostConfig:
    """dockerd fills these at create so inspect shows the effective values."""
    changes: dict[str, Any] = {}
    if not host.log_config.type:
        changes["log_config"] = LogConfig("json-file", dict(host.log_config.config))
    if not host.network_mode:
        changes["network_mode"] = "default"
    if not host.ipc_mode:
        changes["ipc_mode"] = "private"
    if not host.cgroupns_mode:
        changes["cgroupns_mode"] = cgroupns_mode
    if not host.shm_size:
        changes["shm_size"] = 64 * 1024 * 1024
    if not host.runtime:
        changes["runtime"] = "runc"
    if not host.restart_policy.name:
        changes["restart_policy"] = replace(host.restart_policy, name="no")
    if host.memory_swappiness is not None and host.memory_swappiness < 0:
        changes["memory_swappiness"] = None  # the CLI sends -1 for "unset"
    if host.memory > 0 and host.memory_swap == 0:
        changes["memory_swap"] = host.memory * 2  # dockerd's default: as much swap as memory
    if host.pids_limit is not None and host.pids_limit <= 0:
        changes["pids_limit"] = None  # <= 0 means unlimited
    if host.masked_paths is None and not host.privileged:
        from runtime.spec.defaults import default_masked_paths
        changes["masked_paths"] = default_masked_paths()
    if host.readonly_paths is None and not host.privileged:
        from runtime.spec.defaults import DEFAULT_READONLY_PATHS
        changes["readonly_paths"] = DEFAULT_READONLY_PATHS
    return replace(host, **changes)


def _resources(host: HostConfig) -> Any:
    from runtime.containers.devicerules import device_cgroup_rules
    from runtime.linux.cgroups import Resources

    swap = host.memory_swap
    rules = device_cgroup_rules(host)
    return Resources(
        memory=host.memory, memory_swap=swap, memory_reservation=host.memory_reservation,
        nano_cpus=host.nano_cpus, cpu_shares=host.cpu_shares, cpu_quota=host.cpu_quota,
        cpu_period=host.cpu_period, cpuset_cpus=host.cpuset_cpus, cpuset_mems=host.cpuset_mems,
        pids_limit=host.pids_limit, blkio_weight=host.blkio_weight, device_rules=rules,
    )


def _merge_commit_config(given: ContainerConfig, current: ContainerConfig) -> ContainerConfig:
    """dockerd's commit merge: the request's config, unset fields from the container's."""
    image_like: dict[str, Any] = {
        "User": current.user, "Env": list(current.env or []), "Cmd": current.cmd,
        "Entrypoint": current.entrypoint, "WorkingDir": current.working_dir,
        "Labels": dict(current.labels or {}), "StopSignal": current.stop_signal,
        "ExposedPorts": {p: {} for p in current.exposed_ports or ()},
        "Volumes": {v: {} for v in current.volumes or ()},
    }
    return merge_image_config(given, image_like)


def commit_image_config(config: ContainerConfig) -> dict[str, Any]:
    """The image ``config`` section (Docker keys) for a committed container; unset keys
    are left out."""
    health = config.healthcheck
    full: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": config.user,
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": {p: {} for p in config.exposed_ports} if config.exposed_ports else None,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": list(config.env) if config.env is not None else None,
        "Cmd": list(config.cmd) if config.cmd is not None else None,
        "Healthcheck": {
            "Test": list(health.test or []), "Interval": health.interval,
            "Timeout": health.timeout, "Retries": health.retries,
            "StartPeriod": health.start_period, "StartInterval": health.start_interval,
        } if health is not None else None,
        "Image": "", "Volumes": {v: {} for v in config.volumes} if config.volumes else None,
        "WorkingDir": config.working_dir,
        "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "OnBuild": list(config.on_build) if config.on_build is not None else None,
        "Labels": dict(config.labels) if config.labels else None,
        "StopSignal": config.stop_signal or None,
        "Shell": list(config.shell) if config.shell else None,
        "ArgsEscaped": config.args_escaped or None,
    }
    return {k: v for k, v in full.items() if v is not None}


__all__ = ["ContainerService", "CreateRequest", "CreateResult", "LogsOptions", "LogsStream",
           "CommitOptions", "Live", "commit_image_config"]
