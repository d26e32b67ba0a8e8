"""``docker container prune``: remove every stopped container that matches the filters.

Filters are dockerd's: ``until`` (a timestamp or a Go duration before now; one at most),
``label`` (``key``, ``key=value``, ``key!=value``: all must hold) and ``label!`` (kept
unless all of them hold, as dockerd's ``matchLabels``). Running and paused containers are kept. ``SpaceReclaimed`` is the sum of the
removed containers' writable layers; the ``prune`` event carries it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runtime.containers.context import ContainerContext
from runtime.containers.delete import remove
from runtime.containers.overview import sizes
from runtime.filters import Filters

log = logging.getLogger(__name__)

PRUNE_FILTERS = ("label", "label!", "until")


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: tuple[str, ...]
    reclaimed: int


async def prune(ctx: ContainerContext, filters: Filters) -> PruneReport:
    filters.validate(PRUNE_FILTERS)
    until = filters.prune_until()
    deleted: list[str] = []
    reclaimed = 0
    for container in sorted(ctx.store, key=lambda c: c.created_ns):
        state = container.state
        if state.running or state.removal_in_progress:
            continue
        if until is not None and container.created_ns >= until:
            continue
        labels = dict(container.config.labels or {})
        if not filters.match_label_filters(labels):
            continue
        size, _ = sizes(ctx, container)
        try:
            await remove(ctx, container.id)
        except Exception as exc:  # noqa: BLE001 - dockerd logs and goes on with the rest
            log.warning("prune: could not remove container %s: %s", container.id[:12], exc)
            continue
        deleted.append(container.id)
        reclaimed += size
    ctx.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return PruneReport(tuple(deleted), reclaimed)


__all__ = ["PruneReport", "prune", "PRUNE_FILTERS"]
