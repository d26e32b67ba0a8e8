"""``docker pause`` / ``unpause`` with the freezer cgroup, and what signals do to a paused
container (dockerd's ``killWithSignal``).

A paused container keeps ``Running`` and adds ``Paused`` (status ``paused``); exec, attach
and start refuse it. Signals follow dockerd: SIGKILL thaws the cgroup so the kill can take
effect (runc does the same, no ``unpause`` event), and the container's stop signal (any
signal when it has none configured) thaws it and marks it unpaused, with an ``unpause``
event after the ``kill`` event. Any other signal stays pending until ``unpause``. On cgroup
v2 a fatal signal kills a frozen task at once; when the exit removed the cgroup before
the thaw, there is nothing to thaw and that is not an error.
"""

from __future__ import annotations

import asyncio
import signal as _signal
from typing import Any

from runtime.containers.model import Container
from runtime.containers.context import ContainerContext
from runtime.signals import parse_signal
from runtime.errors import Conflict, InvalidParameter, SystemError_


def cgroup_handle(ctx: ContainerContext, container: Container) -> Any:
    """The container's cgroup handle (rebuilt for containers reattached at daemon start)."""
    if ctx.cgroups is None:
        raise SystemError_("cgroups are not available: cannot pause or unpause containers")
    live = ctx.live.get(container.id)
    if live is not None and live.cgroup is not None:
        return live.cgroup
    return ctx.cgroups.handle_for(  # type: ignore[attr-defined]
        container.id, container.host_config.cgroup_parent)


async def _freeze(ctx: ContainerContext, container: Container, frozen: bool) -> None:
    handle = cgroup_handle(ctx, container)
    try:
        await asyncio.to_thread(ctx.cgroups.freeze, handle, frozen)  # type: ignore[union-attr]
    except FileNotFoundError as exc:
        if not frozen:
            # cgroup v2: a frozen task dies of a fatal signal at once, and its exit may
            # have removed the cgroup already: nothing is left to thaw
            return
        raise SystemError_(f"Cannot pause container {container.id}: {exc}") from exc
    except OSError as exc:
        verb = "pause" if frozen else "unpause"
        raise SystemError_(f"Cannot {verb} container {container.id}: {exc}") from exc


async def pause(ctx: ContainerContext, ref: str) -> None:
    container = ctx.get(ref)
    state = container.state
    if not state.running:
        raise Conflict(f"Container {container.id} is not running")
    if state.paused:
        raise Conflict(f"Container {container.id} is already paused")
    if state.restarting:
        raise Conflict(f"Container {container.id} is restarting, wait until the container "
                       "is running")
    await _freeze(ctx, container, True)
    state.paused = True
    ctx.store.save(container)
    ctx.event(container, "pause")


async def unpause(ctx: ContainerContext, ref: str) -> None:
    container = ctx.get(ref)
    state = container.state
    if not state.paused or not state.running:
        # dockerd returns a plain error here (500), not a conflict
        raise SystemError_(f"Container {container.id} is not paused")
    await _freeze(ctx, container, False)
    state.paused = False
    ctx.store.save(container)
    ctx.event(container, "unpause")


def _stop_signal(container: Container) -> int | None:
    name = container.config.stop_signal
    if not name:
        return None
    try:
        return parse_signal(name)
    except InvalidParameter:
        return None


async def resume_after_signal(ctx: ContainerContext, container: Container, sig: int) -> None:
    """Called after ``sig`` was sent to a paused container (see module doc)."""
    if not container.state.paused or not container.state.running:
        return
    if sig == _signal.SIGKILL:
        # the process dies once thawed; the exit clears Paused (no unpause event)
        await _freeze(ctx, container, False)
        return
    stop = _stop_signal(container)
    if stop is None or stop == sig:
        await _freeze(ctx, container, False)
        container.state.paused = False
        ctx.store.save(container)
        ctx.event(container, "unpause")


__all__ = ["pause", "unpause", "resume_after_signal", "cgroup_handle"]
