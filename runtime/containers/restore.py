"""The daemon's start and a replaced supervisor: records read back, running processes
re-adopted, what was lost accounted for as exits, restart policies applied."""

from __future__ import annotations

import asyncio
import logging
import os
import signal as _signal
import time

from runtime.containers.context import ContainerContext
from runtime.containers.exit import ExitMonitor
from runtime.containers.lifecycle import cgroup_of, kill_all, kill_cgroup_members
from runtime.containers.model import Container
from runtime.containers.start import log_driver, start_process
from runtime.containers.stdio import StdioFanout
from runtime.process.contract import ExitReport, ProcessRuntime, StartedProcess

log = logging.getLogger(__name__)


async def load(ctx: ContainerContext, monitor: ExitMonitor) -> None:
    """Load records from disk and reattach to processes that are still running."""
    ctx.store.load()
    for container in ctx.store:
        state = container.state
        if state.restarting:
            # the daemon stopped during a back-off: exited (the policy applies at boot)
            state.set_stopped(state.exit_code, state.finished_at_ns, state.oom_killed)
            ctx.store.save(container)
    if ctx.volumes is not None:
        # before exits seen while away are applied: their removal releases volumes
        ctx.volumes.restore(ctx.store)
    monitor.replay_unclaimed()
    running: dict[str, StartedProcess] = {}
    try:
        for container_id, exec_id, process in await ctx.runtime.running():
            if exec_id is None:
                running[container_id] = process
            else:
                for fd in {process.stdin, process.stdout, process.stderr} - {None}:
                    os.close(fd)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a fresh supervisor has nothing to report
        log.warning("could not list running processes: %s", exc)
    ended: list[tuple[Container, ExitReport]] = []
    for container in ctx.store:
        found = running.pop(container.id, None)
        live = ctx.live_of(container)
        if found is not None and container.state.running:
            process = found
            live.process = process
            live.fanout = StdioFanout(process, log_driver(container))
            container.state.pid = process.pid
            if ctx.health is not None:
                ctx.health.container_started(container)
        elif container.state.running and live.exit_task is None:
            # exited while we were away, and the supervisor kept no report (handled
            # by on_exit when it did): the process is simply gone
            ended.append((container, ExitReport(
                container.id, None, container.state.pid, 255, time.time_ns())))
    for process in running.values():
        await ctx.runtime.signal(process.pid, _signal.SIGKILL)
    for container in ctx.store:
        if not container.state.running:
            # a start the daemon died in the middle of: its process never became the
            # container's, so it must not run on where no API call can see it
            kill_cgroup_members(ctx, container)
    for container, report in ended:
        if ctx.live_of(container).exit_task is None:
            await monitor.handle_exit(container, ctx.live_of(container), report)
    # exits reported while away: handled before the engine serves requests
    handling = [t for live in ctx.live.values() if (t := live.exit_task) is not None]
    if handling:
        await asyncio.wait(handling)


async def start_restart_policy_containers(ctx: ContainerContext, monitor: ExitMonitor) -> None:
    """At daemon start: start stopped containers whose policy says so (``always``, and
    ``unless-stopped`` unless a user stopped them), as dockerd does. Call once the
    engine is fully wired (networking)."""
    for container in ctx.store:
        policy = container.host_config.restart_policy.name
        wanted = policy == "always" or (
            policy == "unless-stopped" and not container.has_been_manually_stopped)
        if wanted and not container.state.running and not container.state.dead:
            try:
                async with ctx.live_of(container).lock:
                    await start_process(ctx, monitor, container)
            except Exception as exc:  # noqa: BLE001 - recorded in State.Error
                log.warning("restarting %s at boot failed: %s", container.id[:12], exc)


def adopt_runtime(ctx: ContainerContext, monitor: ExitMonitor, runtime: ProcessRuntime) -> None:
    """``runtime`` replaces a supervisor that died. What the old one started is nobody's
    child now, so no exit status can ever be had for it: each running container is
    killed with everything in its cgroup and goes through the exit transition as
    exited with 255 (what dockerd records when a container's process is lost), after
    which restart policies apply as to any exit."""
    ctx.runtime = runtime
    runtime.on_exit(monitor.on_exit)
    now = time.time_ns()
    for container in list(ctx.store):
        live = ctx.live.get(container.id)
        if live is None or live.process is None or not container.state.running:
            continue
        kill_all(ctx, container, live.cgroup if live.cgroup is not None
                 else cgroup_of(ctx, container))
        monitor.on_exit(ExitReport(container.id, None, live.process.pid, 255, now))


__all__ = ["load", "start_restart_policy_containers", "adopt_runtime"]
