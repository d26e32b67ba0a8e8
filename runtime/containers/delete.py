"""``docker rm`` (``DELETE /containers/{id}``), ``--rm``'s removal, and ``rm --link``."""

from __future__ import annotations

import signal as _signal
from dataclasses import replace

from runtime.containers.context import ContainerContext
from runtime.containers.lifecycle import (
    cancel_restart, kill_cgroup_members, locked, send_signal, settle,
)
from runtime.containers.links import without_link
from runtime.containers.model import Container
from runtime.containers.state import WaitCondition
from runtime.errors import Conflict, NotFound, SystemError_
from runtime.faults import fault_point


async def remove(ctx: ContainerContext, ref: str, force: bool = False, volumes: bool = False,
                 link: bool = False) -> None:
    if link:
        remove_link(ctx, ref)
        return
    # e.g. kill, then rm: the exit transition is complete first
    async with locked(ctx, ref) as container:
        await remove_container(ctx, container, ref, force, volumes)


def remove_link(ctx: ContainerContext, ref: str) -> None:
    """``DELETE /containers/<parent>/<alias>?link=1``: drop the parent's ``--link``."""
    parent_ref, sep, alias = ref.strip("/").rpartition("/")
    if not sep:  # dockerd answers this with a plain (500) error, for an existing container
        ctx.get(ref)
        raise SystemError_("Conflict, cannot remove the default link name of the container")
    parent = ctx.get(parent_ref)
    links = without_link(parent.host_config.links, alias)
    if links is None:
        raise NotFound(f"No such container: {ref}")
    parent.host_config = replace(parent.host_config, links=links)
    ctx.store.save(parent, host_config=True)


async def remove_container(ctx: ContainerContext, container: Container, ref: str,
                           force: bool, volumes: bool) -> None:
    """The removal itself: the caller holds the lock, or is the exit transition (``--rm``)."""
    state = container.state
    if state.running and not force:
        # dockerd 28 (daemon/delete.go): a restarting container counts as running
        reason = ("container is paused and must be unpaused first" if state.paused else
                  f"container is {state.status}: stop the container before removing or "
                  "force remove")
        raise Conflict(f'cannot remove container "{ref}": {reason}')
    state.set_removal_in_progress(container.id)
    try:
        await cancel_restart(ctx, container)
        if state.running:
            container.has_been_manually_stopped = True
            stopped = state.wait(WaitCondition.NOT_RUNNING)
            await send_signal(ctx, container, _signal.SIGKILL)
            await stopped
        await settle(ctx, container)
    except BaseException:
        state.reset_removal_in_progress()
        raise
    kill_cgroup_members(ctx, container)
    fault_point("remove.before-layer")
    try:
        ctx.layers.remove(container.id)
    except OSError as exc:
        state.reset_removal_in_progress()
        state.set_dead()
        ctx.store.save(container)
        raise SystemError_(f"unable to remove filesystem for {container.id}: {exc}") from exc
    fault_point("remove.after-layer")
    ctx.store.remove(container)
    ctx.live.pop(container.id, None)
    if ctx.volumes is not None:
        ctx.volumes.release(container, remove_anonymous=volumes)
    state.set_removed()
    ctx.event(container, "destroy")


__all__ = ["remove", "remove_link", "remove_container"]
