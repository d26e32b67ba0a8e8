"""``docker inspect`` and ``docker ps`` (``GET /containers/{id}/json``, ``/containers/json``):
the records with what the API shows beside them (NetworkSettings, sizes, link names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.containers.context import ContainerContext
from runtime.containers.links import link_names
from runtime.containers.listing import ListOptions, select
from runtime.containers.model import Container
from runtime.containers.netview import network_settings


@dataclass(frozen=True, slots=True)
class ContainerView:
    """One container as inspect and list show it."""

    container: Container
    network_settings: dict[str, Any] | None = None  # None: no network service
    size: tuple[int, int] | None = None  # (SizeRw, SizeRootFs) when asked for
    link_names: tuple[str, ...] = ()  # /<parent>/<alias> of legacy links to it


def inspect(ctx: ContainerContext, ref: str, size: bool = False) -> ContainerView:
    container = ctx.get(ref)
    return ContainerView(container, network_settings(ctx, container),
                         sizes(ctx, container) if size else None)


def list_containers(ctx: ContainerContext, options: ListOptions) -> list[ContainerView]:
    """The containers ``options`` selects, newest first, as dockerd's ``Containers``."""

    def image_matches(ref: str, container: Container) -> bool:
        if ref in (container.config.image, container.image_id) or container.image_id.startswith(
                "sha256:" + ref) or container.image_id.startswith(ref):
            return True
        try:
            image = ctx.images.get(ref)
        except Exception:  # noqa: BLE001 - an unknown ancestor simply matches nothing
            return False
        return image.id == container.image_id

    selected = select(ctx.store, options, ctx.get, image_matches)
    linked = link_names(ctx.store, ctx.store.find)
    return [ContainerView(c, network_settings(ctx, c), sizes(ctx, c) if options.size else None,
                          tuple(linked.get(c.id, ()))) for c in selected]


def sizes(ctx: ContainerContext, container: Container) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): bytes in the writable layer, and that plus the image."""
    try:
        rw = ctx.layers.size(container.id)
    except OSError:
        rw = 0
    try:
        image_size = int(getattr(ctx.images.get(container.image_id), "size", 0) or 0)
    except Exception:  # noqa: BLE001 - the image may be gone (rmi -f): count nothing
        image_size = 0
    return rw, rw + image_size


__all__ = ["ContainerView", "inspect", "list_containers", "sizes"]
