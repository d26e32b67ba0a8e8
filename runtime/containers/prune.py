"""``docker container prune``: remove every stopped container that matches the filters.

Filters are dockerd's: ``until`` (a timestamp or a Go duration before now; one at most),
``label`` (``key``, ``key=value``, ``key!=value``: all must hold) and ``label!`` (none may
hold). Running and paused containers are kept. ``SpaceReclaimed`` is the sum of the
removed containers' writable layers; the ``prune`` event carries it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runtime.containers.service import ContainerService
from runtime.errors import InvalidParameter, SystemError_
from runtime.filters import Filters
from runtime.timefmt import parse_timestamp

log = logging.getLogger(__name__)

PRUNE_FILTERS = ("label", "label!", "until")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: tuple[str, ...]
    reclaimed: int


def _duration_ns(text: str) -> int | None:
    """Go's ``time.ParseDuration`` for non-negative durations (``1h30m``), else None."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        return None
    return int(total)


def until_ns(value: str, now_ns: int | None = None) -> int:
    """An ``until`` filter value as Unix nanoseconds (dockerd's ``GetTimestamp``)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    duration = _duration_ns(value)
    if duration is not None:
        return now_ns - duration
    try:
        return parse_timestamp(value)
    except ValueError:
        # a plain error in dockerd: 500, not 400
        raise SystemError_(f'failed to parse value as time or duration: "{value}"') from None


def _label_not(exprs: Iterable[str], labels: Mapping[str, str]) -> bool:
    for expr in exprs:
        key, sep, value = expr.partition("=")
        if key in labels and (not sep or labels[key] == value):
            return False
    return True


async def prune(service: ContainerService, filters: Filters) -> PruneReport:
    filters.validate(PRUNE_FILTERS)
    until = None
    values = filters.get("until")
    if len(values) > 1:
        raise InvalidParameter("more than one until filter specified")
    if values:
        until = until_ns(values[0])
    deleted: list[str] = []
    reclaimed = 0
    for container in sorted(service.store, key=lambda c: c.created_ns):
        state = container.state
        if state.running or state.removal_in_progress:
            continue
        if until is not None and container.created_ns >= until:
            continue
        labels = dict(container.config.labels or {})
        if not filters.match_labels(labels) or not _label_not(filters.get("label!"), labels):
            continue
        size, _ = service.sizes(container)
        try:
            await service.remove(container.id)
        except Exception as exc:  # noqa: BLE001 - dockerd logs and goes on with the rest
            log.warning("prune: could not remove container %s: %s", container.id[:12], exc)
            continue
        deleted.append(container.id)
        reclaimed += size
    service.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return PruneReport(tuple(deleted), reclaimed)


__all__ = ["PruneReport", "prune", "until_ns", "PRUNE_FILTERS"]
