"""``GET /containers/json``: which containers to list, with dockerd's filters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.containers.health import status_of
from runtime.containers.model import Container
from runtime.containers.state import Status
from runtime.errors import InvalidParameter
from runtime.filters import Filters

ACCEPTED_FILTERS = frozenset({"ancestor", "before", "expose", "exited", "health", "id",
                              "isolation", "is-task", "label", "name", "network", "publish",
                              "since", "status", "volume"})
STATUSES = tuple(s.value for s in Status)
HEALTH = ("starting", "healthy", "unhealthy", "none")


@dataclass(frozen=True, slots=True)
class ListOptions:
    all: bool = False
    limit: int = -1
    size: bool = False
    filters: Filters = Filters()


def _regex_match(patterns: Iterable[str], value: str) -> bool:
    """dockerd's filters.Match: each value is a regular expression searched in the field."""
    for pattern in patterns:
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            if pattern in value:
                return True
    return False


def select(
    containers: Iterable[Container],
    options: ListOptions,
    resolve: Callable[[str], Container],
    image_matches: Callable[[str, Container], bool],
) -> list[Container]:
    """Filter and order (newest first) like dockerd's ``Containers``."""
    f = options.filters
    f.validate(ACCEPTED_FILTERS)
    for status in f.get("status"):
        if status not in STATUSES:
            raise InvalidParameter(f"Invalid filter 'status={status}'")  # daemon's own text
    for health in f.get("health"):
        if health not in HEALTH:
            raise InvalidParameter(f"Unrecognised filter value for health: {health}")
    exited: list[int] = []
    for value in f.get("exited"):
        try:
            exited.append(int(value))
        except ValueError:
            raise InvalidParameter(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    before = [resolve(ref) for ref in f.get("before")]
    since = [resolve(ref) for ref in f.get("since")]
    ordered = sorted(containers, key=lambda c: c.created_ns, reverse=True)
    show_all = options.all or options.limit > 0 or bool(before or since) or f.has("status") \
        or f.has("exited")
    result: list[Container] = []
    for c in ordered:
        status = c.state.status.value
        if not show_all and not c.state.running:
            continue
        if f.has("id") and not _regex_match(f.get("id"), c.id):
            continue
        if f.has("name") and not _regex_match(f.get("name"), c.name):
            continue
        if not f.match_labels(c.config.labels or {}):
            continue
        if f.has("status") and status not in f.get("status"):
            continue
        if exited and (status != "exited" or c.state.exit_code not in exited):
            continue
        if f.has("ancestor") and not any(image_matches(ref, c) for ref in f.get("ancestor")):
            continue
        if before and not all(c.created_ns < b.created_ns for b in before):
            continue
        if since and not all(c.created_ns > s.created_ns for s in since):
            continue
        if f.has("health") and status_of(c) not in f.get("health"):
            continue
        if f.has("network") and not _network_match(f.get("network"), c):
            continue
        if f.has("volume") and not any(
                v in (m.destination, m.source, m.name) for v in f.get("volume") for m in c.mount_points):
            continue
        if f.has("expose") or f.has("publish"):
            wanted = set(f.get("expose")) | set(f.get("publish"))
            ports = set(c.config.exposed_ports or ()) | {p.split("/")[0] for p in c.config.exposed_ports or ()}
            if not wanted & ports:
                continue
        if f.has("is-task") and "true" in f.get("is-task"):
            continue
        if f.has("isolation") and not ({"", "default"} & set(f.get("isolation"))):
            continue
        result.append(c)
        if options.limit > 0 and len(result) >= options.limit:
            break
    return result


def network_name(c: Container) -> str:
    mode = c.host_config.network_mode
    return "bridge" if mode in ("", "default") else mode


def _network_match(wanted: Iterable[str], c: Container) -> bool:
    name = network_name(c)
    return any(w == name for w in wanted)


__all__ = ["ListOptions", "select", "ACCEPTED_FILTERS", "network_name"]
