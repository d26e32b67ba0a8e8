"""The exit of a container's main process (dockerd's ``handleContainerExit``) and what
follows it: the restart policy's back-off and start, or ``--rm``'s removal.

:class:`ExitMonitor` is the one subscriber to the process runtime's exits. The start and
the removal it triggers are handed in (``restart``, ``remove``) so this module does not
import the operations that import it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from runtime.containers.context import ContainerContext, Live
from runtime.containers.lifecycle import cgroup_of, release_cgroup
from runtime.containers.model import Container
from runtime.process.contract import ExitReport

log = logging.getLogger(__name__)

# a policy's start of a container (the caller holds its lock)
RestartFn = Callable[[Container], Awaitable[None]]
# the forced removal of a container with its anonymous volumes
RemoveFn = Callable[[Container], Awaitable[None]]
ExecExitHandler = Callable[[ExitReport], None]


class ExitMonitor:
    """Turns exit reports into exit transitions, one per run of a container."""

    def __init__(self, ctx: ContainerContext, restart: RestartFn, remove: RemoveFn) -> None:
        self.ctx = ctx
        self._restart = restart
        self._remove = remove
        # exits delivered before the records were read (replayed by ``replay``)
        self.loaded = False
        self._unclaimed: list[ExitReport] = []
        self._exec_exit: ExecExitHandler | None = None

    def set_exec_exit_handler(self, handler: ExecExitHandler) -> None:
        """Exits of exec processes go to the exec service."""
        self._exec_exit = handler

    def replay_unclaimed(self) -> None:
        """Once the records are loaded: the exits that came before."""
        self.loaded = True
        unclaimed, self._unclaimed = self._unclaimed, []
        for report in unclaimed:
            self.on_exit(report)

    def on_exit(self, report: ExitReport) -> None:
        """The one subscriber to the runtime's exits: execs go to the exec service; a
        container's main process gets one exit transition (:meth:`handle_exit`)."""
        if report.exec_id is not None:
            if self._exec_exit is not None:
                self._exec_exit(report)
            return
        ctx = self.ctx
        container = ctx.store.find(report.container_id)
        if container is None:
            if not self.loaded:
                self._unclaimed.append(report)
            else:
                log.debug("exit of pid %d: container %s is gone", report.pid,
                          report.container_id[:12])
            return
        live = ctx.live_of(container)
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
            self.handle_exit(container, live, report))

    async def handle_exit(self, container: Container, live: Live, report: ExitReport) -> None:
        """The exit transition, in order (as dockerd's handleContainerExit): release what
        the run held (output drained, cgroup, volumes, networking), then record the new
        state (stopped, or restarting when the policy says so) and wake waiters, then the
        ``die`` event, then auto-remove or the restart back-off. API calls that must not
        see a half-finished transition wait for this task (``lifecycle.settle``)."""
        ctx = self.ctx
        if ctx.health is not None:
            ctx.health.container_stopped(container)
        # output written just before exit must reach the log and the clients before
        # waiters learn about the exit (docker-py reads the logs right after wait)
        if live.fanout is not None:
            await live.fanout.drain()
        # the supervisor watched memory.events while it ran (cgroup v2: under systemd the
        # scope's cgroup may be gone by now); otherwise read the cgroup, which v1 keeps
        oom = report.oom_killed
        # a container reattached after a daemon restart has no handle yet: derive it
        cgroup = live.cgroup if live.cgroup is not None else cgroup_of(ctx, container)
        if cgroup is not None and ctx.cgroups is not None:
            try:
                oom = oom or ctx.cgroups.oom_killed(cgroup)
            except OSError:
                pass
            release_cgroup(ctx, cgroup)
        live.process = None
        live.fanout = None
        live.cgroup = None
        if ctx.volumes is not None:
            ctx.volumes.unmount(container)
        if ctx.network_steps is not None:
            try:
                await ctx.network_steps.detach(container.id, report.pid)
            except Exception as exc:  # noqa: BLE001 - the exit is recorded regardless
                log.warning("detaching networking of %s: %s", container.id[:12], exc)
        started = container.state.started_at_ns
        restart = (not container.host_config.auto_remove
                   and self.should_restart(container, report.exit_code))
        if restart:
            container.restart_count += 1
            container.state.set_restarting(report.exit_code, report.finished_at_ns, oom)
        else:
            container.state.set_stopped(report.exit_code, report.finished_at_ns, oom_killed=oom)
        if not container.host_config.auto_remove:  # removed right below otherwise
            ctx.store.save(container)
        if oom:
            ctx.event(container, "oom")
        duration = max(0, (report.finished_at_ns - started) // 1_000_000_000)
        ctx.event(container, "die", exitCode=str(report.exit_code), execDuration=str(duration))
        if container.host_config.auto_remove:
            await self.auto_remove(container)
        elif restart:
            live.backing_off = True
            live.restart_task = asyncio.get_running_loop().create_task(
                self._restart_later(container, live, (report.finished_at_ns - started) / 1e9))

    def should_restart(self, container: Container, exit_code: int) -> bool:
        policy = container.host_config.restart_policy
        if (container.has_been_manually_stopped or container.state.removal_in_progress
                or self.ctx.shutting_down):
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
        rm cancels the back-off (``lifecycle.cancel_restart``), not a start in progress."""
        if ran >= 10:
            live.restart_delay = 0.0
        live.restart_delay = 0.1 if live.restart_delay == 0 else min(live.restart_delay * 2, 60.0)
        await asyncio.sleep(live.restart_delay)
        async with live.lock:  # still cancellable (backing off) while waiting for it
            live.backing_off = False
            if (container.has_been_manually_stopped or container.state.removal_in_progress
                    or not container.state.restarting
                    or self.ctx.store.find(container.id) is not container):
                return
            try:
                await self._restart(container)
            except Exception as exc:  # noqa: BLE001 - recorded in State.Error
                log.warning("restarting %s failed: %s", container.id[:12], exc)
                if container.state.restarting:
                    container.state.set_stopped(container.state.exit_code,
                                                container.state.finished_at_ns)
                    self.ctx.store.save(container)

    async def auto_remove(self, container: Container) -> None:
        """``--rm``: from the exit transition, which never takes the lifecycle lock."""
        try:
            await self._remove(container)
        except Exception as exc:  # noqa: BLE001 - already removed by a client, or similar
            log.debug("auto-remove of %s: %s", container.id[:12], exc)


__all__ = ["ExitMonitor", "RestartFn", "RemoveFn", "ExecExitHandler"]
