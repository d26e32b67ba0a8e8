"""``docker stop`` and ``docker restart``, and the daemon's shutdown stop: the stop signal,
then SIGKILL after the timeout."""

from __future__ import annotations

import asyncio
import logging
import signal as _signal

from runtime.containers.context import ContainerContext, ExitSink
from runtime.containers.lifecycle import cancel_restart, locked, send_signal, settle
from runtime.containers.model import Container
from runtime.signals import parse_signal
from runtime.containers.start import start_process
from runtime.containers.state import WaitCondition
from runtime.errors import ContainerNotFound, NotModified

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10


async def stop(ctx: ContainerContext, ref: str, signal: str | None = None,
               timeout: int | None = None) -> None:
    """``POST /containers/{id}/stop``."""
    async with locked(ctx, ref) as container:
        if not container.state.running:
            raise NotModified("container already stopped")
        await stop_container(ctx, container, signal, timeout)


async def restart(ctx: ContainerContext, exits: ExitSink, ref: str, signal: str | None = None,
                  timeout: int | None = None) -> None:
    """``POST /containers/{id}/restart``: stop when running, then start."""
    async with locked(ctx, ref) as container:
        if container.state.running:
            await stop_container(ctx, container, signal, timeout)
        await settle(ctx, container)
        if ctx.store.find(container.id) is not container:
            raise ContainerNotFound(ref)  # --rm: removed when it stopped
        ctx.live_of(container).restart_delay = 0.0
        await start_process(ctx, exits, container)
        ctx.event(container, "restart")


async def shutdown(ctx: ContainerContext, timeout: int | None = None) -> None:
    """Daemon shutdown without live-restore: stop every running container like
    ``docker stop`` but without marking it manually stopped, so ``unless-stopped``
    and ``always`` containers come back at the next start."""
    ctx.shutting_down = True
    running = [c for c in ctx.store if c.state.running]

    async def stop_one(container: Container) -> None:
        async with ctx.live_of(container).lock:
            await stop_container(ctx, container, None, timeout, manual=False)

    results = await asyncio.gather(*(stop_one(c) for c in running), return_exceptions=True)
    for container, result in zip(running, results):
        if isinstance(result, Exception):
            log.warning("stopping %s at shutdown: %s", container.id[:12], result)


async def stop_container(ctx: ContainerContext, container: Container, signal: str | None,
                         timeout: int | None, manual: bool = True) -> None:
    """The stop itself (the caller holds the lock): cancel a restart back-off, send the
    stop signal, SIGKILL once ``timeout`` seconds passed (< 0: wait for ever)."""
    sig = parse_signal(signal or container.config.stop_signal or "SIGTERM")
    if timeout is None:
        timeout = (container.config.stop_timeout if container.config.stop_timeout is not None
                   else DEFAULT_STOP_TIMEOUT)
    if manual:
        container.has_been_manually_stopped = True
    await cancel_restart(ctx, container)
    stopped = container.state.wait(WaitCondition.NOT_RUNNING)
    if container.state.running:
        await send_signal(ctx, container, sig)
        try:
            await asyncio.wait_for(asyncio.shield(stopped), None if timeout < 0 else timeout)
        except TimeoutError:
            if container.state.running:
                await send_signal(ctx, container, _signal.SIGKILL)
            await stopped
    if ctx.store.find(container.id) is container:  # not auto-removed meanwhile
        ctx.store.save(container)
    ctx.event(container, "stop")


__all__ = ["DEFAULT_STOP_TIMEOUT", "stop", "restart", "shutdown", "stop_container"]
