"""``docker kill`` (``POST /containers/{id}/kill``), as dockerd's ``ContainerKill``.

The route is ``compat_api/routers/containers/handlers.py:kill`` -> ``ContainerService.kill``
-> :func:`kill` here -> ``lifecycle.send_signal`` (the runtime's signal, the ``kill`` event,
a paused container thawed) -> the exit comes back through ``exit.ExitMonitor``."""

from __future__ import annotations

import asyncio
import logging
import signal as _signal

from runtime.containers.context import ContainerContext
from runtime.containers.lifecycle import cancel_restart, locked, send_signal
from runtime.containers.model import Container
from runtime.signals import parse_kill_signal, parse_signal
from runtime.containers.state import WaitCondition
from runtime.errors import Conflict

log = logging.getLogger(__name__)

KILL_WAIT = 10  # dockerd's Kill waits this long for the exit after SIGKILL


async def kill(ctx: ContainerContext, ref: str, signal: str = "") -> None:
    """SIGKILL (the default) returns once the container has stopped; another signal
    returns once sent. A kill that ends the run (SIGKILL, the stop signal, or any signal
    when none is configured) cancels the restart policy."""
    sig = parse_kill_signal(signal or "SIGKILL")
    async with locked(ctx, ref) as container:
        await kill_container(ctx, container, ref, sig)


async def kill_container(ctx: ContainerContext, container: Container, ref: str,
                         sig: int) -> None:
    """The kill itself (the caller holds the lock)."""
    state = container.state
    if not state.running:
        raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
    stop_signal = container.config.stop_signal
    if sig == _signal.SIGKILL or not stop_signal or parse_signal(stop_signal) == sig:
        container.has_been_manually_stopped = True
        await cancel_restart(ctx, container)
    elif state.restarting:
        container.has_been_manually_stopped = True
    if not state.running or state.restarting:
        return  # nothing to signal: dockerd only tells the restart monitor
    stopped = state.wait(WaitCondition.NOT_RUNNING)
    await send_signal(ctx, container, sig)
    if sig != _signal.SIGKILL:
        stopped.cancel()
        return
    try:
        await asyncio.wait_for(asyncio.shield(stopped), KILL_WAIT)
    except TimeoutError:
        log.warning("container %s did not exit within %ds of SIGKILL", container.id[:12],
                    KILL_WAIT)


__all__ = ["KILL_WAIT", "kill", "kill_container"]
