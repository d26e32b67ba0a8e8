"""Health probes as real execs, and the monitors wired into the container service.

Kept apart from ``runtime.containers.health`` (the health state and its monitors), which
listing and inspect read: only this module needs the exec service.
"""

from __future__ import annotations

import asyncio
import logging
import signal as _signal
import time

from runtime.containers.execs import ExecConfig, ExecService
from runtime.containers.health import MAX_OUTPUT, HealthMonitors, ProbeResult
from runtime.containers.model import Container
from runtime.containers.service import ContainerService
from runtime.errors import EngineError
from runtime.gofmt import go_duration

log = logging.getLogger(__name__)


class ExecProbeRunner:
    """Runs probes as real execs (with exec_create/exec_start/exec_die events, as dockerd)."""

    def __init__(self, execs: ExecService) -> None:
        self.execs = execs

    async def run(self, container: Container, cmd: tuple[str, ...],
                  timeout: float) -> ProbeResult:
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
                              lambda container, action: containers.event(container, action))
    containers.set_health(monitors)
    return monitors


__all__ = ["ExecProbeRunner", "attach"]
