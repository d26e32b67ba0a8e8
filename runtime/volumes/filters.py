"""The ``filters`` of volume list and prune, with dockerd's semantics and error texts.

List: ``dangling`` (bool), ``driver`` (exact), ``label`` (every ``key``/``key=value``
must hold), ``name`` (exact, or a regular expression searched in the name). Prune:
``label``, ``label!`` (exclude volumes matching all of them) and ``all`` (API >= 1.42:
without ``all=true`` only anonymous volumes are pruned).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from runtime.errors import InvalidParameter
from runtime.filters import Filters
from runtime.volumes.model import ANONYMOUS_LABEL, Volume

LIST_FILTERS = frozenset({"dangling", "name", "driver", "label"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})

Predicate = Callable[[Volume, bool], bool]  # (volume, referenced) -> keep?


def _go_values(values: Iterable[str]) -> str:
    return "[" + " ".join(values) + "]"


def name_matches(patterns: Iterable[str], name: str) -> bool:
    """moby's ``Args.Match``: an exact value, or a regular expression found in the name."""
    for pattern in patterns:
        if pattern == name:
            return True
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def _dangling(filters: Filters) -> bool | None:
    if not filters.has("dangling"):
        return None
    values = set(filters.get("dangling"))
    is_true = bool(values & {"1", "true"})
    is_false = bool(values & {"0", "false"})
    if is_true == is_false:
        raise InvalidParameter(f"invalid filter 'dangling={_go_values(filters.get('dangling'))}'")
    return is_true


def _labels(filters: Filters) -> Predicate:
    def keep(volume: Volume, referenced: bool) -> bool:
        return filters.match_label_filters(volume.labels)

    return keep


def list_predicate(filters: Filters) -> Predicate:
    """The list filter as one predicate; raises dockerd's ``invalid filter`` errors."""
    filters.validate(LIST_FILTERS)
    dangling = _dangling(filters)
    drivers = filters.get("driver")
    names = filters.get("name")
    labels = _labels(filters)

    def keep(volume: Volume, referenced: bool) -> bool:
        if drivers and volume.driver not in drivers:
            return False
        if filters.has("name") and not name_matches(names, volume.name):
            return False
        if not labels(volume, referenced):
            return False
        return dangling is None or referenced != dangling

    return keep


def prune_predicate(filters: Filters) -> Predicate:
    """Which unreferenced volumes prune removes (the caller adds ``all=true`` for API
    < 1.42). Volumes with driver options are never pruned (nothing to reclaim)."""
    all_values = filters.get("all")
    everything = False
    if len(all_values) > 1:
        raise InvalidParameter(
            f"invalid filter 'all={_go_values(all_values)}': only one value is expected")
    if len(all_values) == 1:
        everything = _parse_bool(all_values[0])
    filters.validate(PRUNE_FILTERS)
    labels = _labels(filters)

    def keep(volume: Volume, referenced: bool) -> bool:
        if referenced or volume.options:
            return False
        if not everything and ANONYMOUS_LABEL not in (volume.labels or {}):
            return False
        return labels(volume, referenced)

    return keep


def _parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``, with the error dockerd wraps."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidParameter(
        f"invalid filter 'all': strconv.ParseBool: parsing \"{text}\": invalid syntax")


__all__ = ["LIST_FILTERS", "PRUNE_FILTERS", "list_predicate", "prune_predicate",
           "name_matches"]
