"""Steps several container operations share: the per-container lock, waiting for an exit
transition, cancelling a restart back-off, signalling, and the container's cgroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from runtime.containers import freeze
from runtime.containers.context import ContainerContext
from runtime.containers.model import Container, HostConfig
from runtime.containers.devicerules import device_cgroup_rules
from runtime.errors import ContainerNotFound
from runtime.linux.cgroups import CgroupHandle, Resources

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def locked(ctx: ContainerContext, ref: str) -> AsyncIterator[Container]:
    """``ref``'s container for one lifecycle operation at a time (dockerd's container
    lock), once an exit transition in progress is complete."""
    container = ctx.get(ref)
    async with ctx.live_of(container).lock:
        await settle(ctx, container)
        if ctx.store.find(container.id) is not container:
            raise ContainerNotFound(ref)  # removed meanwhile (rm, --rm)
        yield container


async def settle(ctx: ContainerContext, container: Container) -> None:
    """Wait for an exit transition in progress (not when called from within it)."""
    live = ctx.live.get(container.id)
    task = live.exit_task if live is not None else None
    if task is not None and not task.done() and task is not asyncio.current_task():
        await asyncio.wait([task])


async def cancel_restart(ctx: ContainerContext, container: Container) -> None:
    """Cancel a restart back-off: the container is exited with its last exit code (a
    restart already starting is let finish: the caller then stops that run)."""
    live = ctx.live.get(container.id)
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
        ctx.store.save(container)


async def send_signal(ctx: ContainerContext, container: Container, sig: int) -> None:
    """Signal the main process (``kill`` event); a paused container is thawed as dockerd
    does (see ``runtime.containers.freeze``)."""
    live = ctx.live_of(container)
    if live.process is None:
        return
    await ctx.runtime.signal(live.process.pid, sig)
    ctx.event(container, "kill", signal=str(sig))
    if container.state.paused:
        await freeze.resume_after_signal(ctx, container, sig)


# --- the container's cgroup ----------------------------------------------------------------


def cgroup_of(ctx: ContainerContext, container: Container) -> CgroupHandle | None:
    """The handle of the container's cgroup by its ID (it may exist or not)."""
    handle_for = getattr(ctx.cgroups, "handle_for", None)
    if handle_for is None:
        return None
    handle: CgroupHandle = handle_for(container.id, container.host_config.cgroup_parent)
    return handle


def kill_cgroup_members(ctx: ContainerContext, container: Container) -> None:
    """No process outlives its record: kill whatever is still in the container's
    cgroup (e.g. a process a crashed daemon started but never recorded), then remove
    the cgroup."""
    cgroup = cgroup_of(ctx, container)
    if cgroup is None:
        return
    if killed := kill_all(ctx, container, cgroup):
        log.warning("container %s: killed %d process(es) left in its cgroup",
                    container.id[:12], len(killed))
    release_cgroup(ctx, cgroup)


def kill_all(ctx: ContainerContext, container: Container,
             cgroup: CgroupHandle | None) -> list[int]:
    """SIGKILL everything in the container's cgroup (none can fork away); the pids."""
    kill = getattr(ctx.cgroups, "kill_all", None)
    if cgroup is None or kill is None:
        return []
    try:
        return list(kill(cgroup))
    except OSError as exc:
        log.warning("container %s: killing what is in its cgroup: %s", container.id[:12], exc)
        return []


def release_cgroup(ctx: ContainerContext, cgroup: CgroupHandle | None) -> None:
    if cgroup is not None and ctx.cgroups is not None:
        try:
            ctx.cgroups.remove(cgroup)
        except OSError as exc:
            log.warning("removing cgroup: %s", exc)


def resources(host: HostConfig) -> Resources:
    """The cgroup limits of ``host``."""
    rules = device_cgroup_rules(host)
    return Resources(
        memory=host.memory, memory_swap=host.memory_swap,
        memory_reservation=host.memory_reservation,
        nano_cpus=host.nano_cpus, cpu_shares=host.cpu_shares, cpu_quota=host.cpu_quota,
        cpu_period=host.cpu_period, cpuset_cpus=host.cpuset_cpus, cpuset_mems=host.cpuset_mems,
        pids_limit=host.pids_limit, blkio_weight=host.blkio_weight, device_rules=rules,
    )


__all__ = ["locked", "settle", "cancel_restart", "send_signal", "cgroup_of",
           "kill_cgroup_members", "kill_all", "release_cgroup", "resources"]
