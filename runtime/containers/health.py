"""Container health checks: one asyncio monitor per running container (dockerd's health.go).

A probe runs the configured test as an exec inside the container every interval (the
start interval while still ``starting`` inside the start period); the result updates
``State.health`` and a change of status is published as ``health_status: <status>``.
"""

from __future__ import annotations

import asyncio
import logging
import signal as _signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from runtime.containers.model import Container, HealthConfig
from runtime.errors import EngineError
from runtime.gofmt import go_duration

if TYPE_CHECKING:
    from runtime.containers.execs import ExecService
    from runtime.containers.service import ContainerService

log = logging.getLogger(__name__)

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096


@dataclass(frozen=True, slots=True)
class ProbeResult:
    start_ns: int
    end_ns: int
    exit_code: int
    output: str


@dataclass(slots=True)
class Health:
    """``State.Health``: mutated only by the container's monitor."""

    status: str = STARTING
    failing_streak: int = 0
    log: list[ProbeResult] = field(default_factory=list)


class ProbeRunner(Protocol):
    async def run(self, container: Container, cmd: tuple[str, ...],
                  timeout: float) -> ProbeResult:
        """Run ``cmd`` in the container; exit code -1 on timeout or start failure."""
        ...


@dataclass(frozen=True, slots=True)
class Schedule:
    """The effective (defaulted) timing of one healthcheck, in seconds."""

    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    @classmethod
    def of(cls, config: HealthConfig) -> Schedule:
        def secs(ns: int, default: float) -> float:
            return ns / 1e9 if ns > 0 else default
        return cls(secs(config.interval, DEFAULT_INTERVAL), secs(config.timeout, DEFAULT_TIMEOUT),
                   secs(config.start_period, 0.0),
                   secs(config.start_interval, DEFAULT_START_INTERVAL),
                   config.retries if config.retries > 0 else DEFAULT_RETRIES)


def probe_command(container: Container) -> tuple[str, ...] | None:
    """The argv of the probe, or None when there is no (or a disabled) healthcheck."""
    config = container.config.healthcheck
    test = tuple(config.test or ()) if config is not None else ()
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        shell = tuple(container.config.shell or ("/bin/sh", "-c"))
        return shell + (" ".join(test[1:]),)
    log.warning("container %s: unknown healthcheck type %r", container.id[:12], test[0])
    return None


def apply_result(health: Health, result: ProbeResult, schedule: Schedule,
                 started_at_ns: int) -> None:
    """dockerd's handleProbeResult: failures inside the start period do not count while
    the container has never been healthy."""
    health.log.append(result)
    del health.log[:-MAX_LOG_ENTRIES]
    if result.exit_code == 0:
        health.failing_streak = 0
        health.status = HEALTHY
        return
    if health.status == STARTING and \
            (result.start_ns - started_at_ns) / 1e9 < schedule.start_period:
        return
    health.failing_streak += 1
    if health.failing_streak >= schedule.retries:
        health.status = UNHEALTHY


def status_of(container: Container) -> str:
    """The ``health`` filter's value: ``none`` without a health state."""
    health = container.state.health
    return health.status if isinstance(health, Health) else NONE


class HealthMonitors:
    """Starts a monitor when a container starts and cancels it when it stops."""

    def __init__(self, runner: ProbeRunner, publish: EventPublisher) -> None:
        self.runner = runner
        self.publish = publish
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def container_started(self, container: Container) -> None:
        self.container_stopped(container)
        cmd = probe_command(container)
        if cmd is None:
            return
        health = container.state.health
        if isinstance(health, Health):  # restarted: keep the log, start over
            health.status, health.failing_streak = STARTING, 0
        else:
            container.state.health = Health()
        assert container.config.healthcheck is not None
        schedule = Schedule.of(container.config.healthcheck)
        self.tasks[container.id] = asyncio.get_running_loop().create_task(
            self._monitor(container, cmd, schedule))

    def container_stopped(self, container: Container) -> None:
        """Cancel the monitor; an exited container reads ``unhealthy`` (as dockerd 20.10)."""
        task = self.tasks.pop(container.id, None)
        if task is not None:
            task.cancel()
        if isinstance(container.state.health, Health):
            container.state.health.status = UNHEALTHY

    async def _monitor(self, container: Container, cmd: tuple[str, ...],
                       schedule: Schedule) -> None:
        health = container.state.health
        assert isinstance(health, Health)
        started = container.state.started_at_ns
        while True:
            await asyncio.sleep(self._interval(health, schedule, started))
            if not container.state.running:
                return
            try:
                result = await self.runner.run(container, cmd, schedule.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a probe failure, recorded in the log
                now = time.time_ns()
                result = ProbeResult(now, now, -1, str(exc))
            if self.tasks.get(container.id) is not asyncio.current_task():
                return  # stopped while probing: dockerd drops that result
            before = health.status
            apply_result(health, result, schedule, started)
            if health.status != before:
                self.publish(container, f"health_status: {health.status}")

    @staticmethod
    def _interval(health: Health, schedule: Schedule, started_ns: int) -> float:
        in_start_period = (time.time_ns() - started_ns) / 1e9 < schedule.start_period
        if in_start_period and health.status == STARTING:
            return schedule.start_interval
        return schedule.interval


class EventPublisher(Protocol):
    def __call__(self, container: Container, action: str) -> None: ...


class ExecProbeRunner:
    """Runs probes as real execs (with exec_create/exec_start/exec_die events, as dockerd)."""

    def __init__(self, execs: ExecService) -> None:
        self.execs = execs

    async def run(self, container: Container, cmd: tuple[str, ...],
                  timeout: float) -> ProbeResult:
        from runtime.containers.execs import ExecConfig
        start = time.time_ns()
        try:
            exec_id = self.execs.create(container.id, ExecConfig(
                cmd=cmd, attach_stdout=True, attach_stderr=True))
            record = self.execs.get(exec_id)
            await self.execs.start(exec_id, detach=True)
        except EngineError as exc:
            return ProbeResult(start, time.time_ns(), -1, str(exc))
        output = bytearray()
        # no await since start: nothing has been read from the process yet
        subscription = record.fanout.subscribe() if record.fanout is not None else None

        async def collect() -> None:
            if subscription is None:
                return
            try:
                async for _stream, data in subscription:
                    output.extend(data[:max(0, MAX_OUTPUT - len(output))])
            finally:
                subscription.close()

        async def finished() -> None:
            await collect()
            await record.done.wait()

        try:
            await asyncio.wait_for(finished(), timeout)
        except TimeoutError:
            if record.running and record.pid:
                try:
                    await self.execs.containers.runtime.signal(record.pid, _signal.SIGKILL)
                except Exception as exc:  # noqa: BLE001 - it may have exited meanwhile
                    log.debug("killing probe %s: %s", exec_id[:12], exc)
            return ProbeResult(start, time.time_ns(), -1,
                               f"Health check exceeded timeout ({go_duration(round(timeout * 1e9))})")
        code = record.exit_code if record.exit_code is not None else -1
        return ProbeResult(start, time.time_ns(), code, output.decode("utf-8", "replace"))


def attach(containers: ContainerService, execs: ExecService) -> HealthMonitors:
    """Wire real monitors into the container service (one call from the engine wiring)."""
    monitors = HealthMonitors(ExecProbeRunner(execs),
                              lambda container, action: containers._event(container, action))
    containers.set_health(monitors)
    return monitors


__all__ = ["Health", "ProbeResult", "ProbeRunner", "Schedule", "HealthMonitors",
           "ExecProbeRunner", "apply_result", "probe_command", "status_of", "attach",
           "STARTING", "HEALTHY", "UNHEALTHY", "NONE"]
