"""``docker start``: the start of a container's main process, used by start, restart, the
restart policy and the daemon's boot (``start_process``), and undone when it fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
import time

from runtime.containers.context import ContainerContext, ExitSink, Live
from runtime.containers.etcfiles import write_etc_files
from runtime.containers.lifecycle import locked, release_cgroup, resources
from runtime.containers.model import Container, HostConfig
from runtime.containers.spec import Peers, compose_spec
from runtime.containers.stdio import StdioFanout
from runtime.errors import Conflict, NotModified, SystemError_
from runtime.faults import fault_point
from runtime.linux.cgroups import CgroupHandle
from runtime.logs.driver import LogDriver, LogDriverInitFailed, NoneDriver, json_file_options
from runtime.logs.jsonfile import JsonFileDriver
from runtime.process.contract import StartedProcess, StartFailed
from runtime.system import initbin


async def start(ctx: ContainerContext, exits: ExitSink, ref: str) -> None:
    """``POST /containers/{id}/start``."""
    async with locked(ctx, ref) as container:
        state = container.state
        if state.paused:
            raise Conflict("cannot start a paused container, try unpause instead")
        if state.running:
            raise NotModified("container already started")
        if state.removal_in_progress or state.dead:
            raise Conflict("container is marked for removal and cannot be started")
        ctx.live_of(container).restart_delay = 0.0  # a new restart manager, as dockerd
        await start_process(ctx, exits, container)


async def start_process(ctx: ContainerContext, exits: ExitSink, container: Container,
                        by_policy: bool = False) -> None:
    """Start the main process: (start paused -> attach networking -> resume) when a
    network namespace is set up, then record it running. An exit of the process
    before that is handled here, after ``set_running``, never concurrently.
    ``by_policy``: a restart policy's start, which keeps a stop or kill made meanwhile
    in force (dockerd's restart goroutine does not reset HasBeenManuallyStopped).
    The caller holds the container's lock."""
    while ctx.rootfs.busy(container.id):
        # its overlay is mounted privately for cp/export: never mount the upper dir twice
        await asyncio.sleep(0.05)
    live = ctx.live_of(container)
    host = container.host_config
    if container.log_driver == "json-file":
        try:
            json_file_options(host.log_config.config)
        except LogDriverInitFailed as exc:
            container.state.set_start_failed(128, str(exc))  # dockerd's code for it
            ctx.store.save(container)
            fail_pending(live)
            raise
    steps = ctx.network_steps
    cgroup: CgroupHandle | None = None
    process: StartedProcess | None = None
    live.starting, live.start_exit = True, None
    try:
        peers = _peers(ctx, host)
        if ctx.cgroups is not None:
            cgroup = ctx.cgroups.create(container.id, resources(host), host.cgroup_parent)
            fault_point("start.after-cgroup")
        dirs = tuple(getattr(cgroup, "dirs", ()) or ())
        write_etc_files(container)
        if ctx.volumes is not None:
            ctx.volumes.mount(container)
        settings = ctx.settings
        spec = compose_spec(
            container, cgroup_dirs=dirs, peers=peers, cgroup_v2=ctx.cgroup_v2,
            all_caps=settings.all_caps, masked_default=settings.masked_default,
            init_path=init_path_for(ctx, host),
        )
        if steps is not None:
            spec = await steps.prepare(spec)
        process = await ctx.runtime.start(spec)
        fault_point("start.after-process")
        if cgroup is not None:
            getattr(ctx.cgroups, "started", lambda _handle: None)(cgroup)
        if spec.pause_before_exec:
            if steps is not None:
                await steps.attach(spec, process.pid)
            # the init's own failures (exec not found...) surface here, unchanged
            await ctx.runtime.resume(container.id)
    except BaseException as exc:
        live.starting, live.start_exit = False, None
        await _undo_start(ctx, container, process, cgroup)
        fail_pending(live)
        if isinstance(exc, StartFailed):
            container.state.set_start_failed(exc.exit_code, str(exc))
            ctx.store.save(container)
            if host.auto_remove:
                asyncio.get_running_loop().create_task(exits.auto_remove(container))
        raise
    fault_point("start.before-record")
    live.starting = False
    live.process = process
    live.cgroup = cgroup
    live.fanout = StdioFanout(process, log_driver(container))
    # attach sessions made before start subscribe now, before any output is read
    pending, live.pending = live.pending, []
    for callback in pending:
        callback(live.fanout)
    container.state.set_running(process.pid, time.time_ns())
    container.has_been_started = True
    if not by_policy:
        container.has_been_manually_stopped = False
    ctx.store.save(container)
    ctx.event(container, "start")
    if ctx.health is not None:
        ctx.health.container_started(container)
    early, live.start_exit = live.start_exit, None
    if early is not None:
        exits.on_exit(early)


async def _undo_start(ctx: ContainerContext, container: Container,
                      process: StartedProcess | None, cgroup: CgroupHandle | None) -> None:
    if process is not None:
        with contextlib.suppress(Exception):  # already gone when its init failed
            await ctx.runtime.signal(process.pid, _signal.SIGKILL)
        close_stdio(process)
    if ctx.network_steps is not None:
        with contextlib.suppress(Exception):
            await ctx.network_steps.detach(container.id, None)
    release_cgroup(ctx, cgroup)
    if ctx.volumes is not None:
        ctx.volumes.unmount(container)


def close_stdio(process: StartedProcess) -> None:
    for fd in {process.stdin, process.stdout, process.stderr} - {None}:
        with contextlib.suppress(OSError):
            os.close(fd)  # type: ignore[arg-type]


def init_path_for(ctx: ContainerContext, host: HostConfig) -> str | None:
    """The init binary to run as PID 1 (dockerd: only in a private PID namespace)."""
    settings = ctx.settings
    wanted = host.init if host.init is not None else settings.init
    if not wanted or host.pid_mode not in ("", "private"):
        return None
    path = initbin.lookup(settings.init_path)
    if path is None:
        name = settings.init_path or initbin.DEFAULT_INIT_BINARY
        raise SystemError_(f'exec: "{name}": executable file not found in $PATH')
    return path


def fail_pending(live: Live) -> None:
    """Attach sessions waiting for a start that failed: they end."""
    pending, live.pending = live.pending, []
    for callback in pending:
        callback(None)


def _peers(ctx: ContainerContext, host: HostConfig) -> Peers:
    def pid_of(mode: str) -> int | None:
        if not mode.startswith("container:"):
            return None
        peer = ctx.get(mode.partition(":")[2])
        if not peer.state.running:
            raise Conflict(f"cannot join namespace of a non running container: {peer.id}")
        return peer.state.pid
    return Peers(network=pid_of(host.network_mode), ipc=pid_of(host.ipc_mode),
                 pid=pid_of(host.pid_mode))


def log_driver(container: Container) -> LogDriver:
    """The driver the main process' output is written to."""
    if container.log_driver == "none":
        return NoneDriver()
    return JsonFileDriver.from_options(container.log_path, container.host_config.log_config.config)


__all__ = ["start", "start_process", "init_path_for", "fail_pending", "log_driver", "close_stdio"]
