"""``docker rename`` (``POST /containers/{id}/rename``)."""

from __future__ import annotations

from runtime.containers.context import ContainerContext
from runtime.containers.model import validate_name
from runtime.errors import InvalidParameter


async def rename(ctx: ContainerContext, ref: str, new_name: str) -> None:
    """The new name is reserved before the old one is released; a running container's
    sandbox (DNS, /etc/hosts of linked peers) follows."""
    if not new_name:
        raise InvalidParameter("Neither old nor new names may be empty")
    container = ctx.get(ref)
    canonical = validate_name(new_name)
    old = container.name
    if canonical == old:
        raise InvalidParameter("Renaming a container with the same name as its current name")
    ctx.store.reserve_name(canonical, container.id)
    container.name = canonical
    ctx.store.release_name(old)
    ctx.store.save(container)
    if ctx.networking is not None and container.state.running:
        await ctx.networking.rename_container(container.id, canonical.lstrip("/"))
    ctx.event(container, "rename", oldName=old)


__all__ = ["rename"]
