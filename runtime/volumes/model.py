"""Volume domain values, dockerd's naming rule and its error texts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from runtime.errors import InvalidParameter

LOCAL_DRIVER = "local"
LOCAL_SCOPE = "local"
# set on volumes created without a name; prune (API >= 1.42) only takes these by default
ANONYMOUS_LABEL = "com.docker.volume.anonymous"

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


@dataclass(frozen=True, slots=True)
class Volume:
    """One volume. ``labels``/``options`` are None when none were given (dockerd renders
    ``null`` then, ``{}`` for an explicitly empty map)."""

    name: str
    driver: str
    mountpoint: str
    created_ns: int
    labels: Mapping[str, str] | None = None
    options: Mapping[str, str] | None = None
    scope: str = LOCAL_SCOPE

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})


@dataclass(frozen=True, slots=True)
class VolumeUsage:
    """A volume with what ``/system/df`` reports: bytes used (-1: unknown) and the number
    of containers referencing it."""

    volume: Volume
    size: int
    ref_count: int


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: tuple[str, ...] = ()
    space_reclaimed: int = 0


@dataclass(frozen=True, slots=True)
class CreateOptions:
    """What ``POST /volumes/create`` (or a container mount) asks for."""

    name: str = ""
    driver: str = ""
    driver_opts: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None


def validate_name(name: str) -> None:
    """The local driver's rule (dockerd's texts, wrapped in ``create <name>: `` by callers)."""
    if len(name) == 1:
        raise InvalidParameter(
            "volume name is too short, names should be at least two alphanumeric characters")
    if not NAME_RE.match(name):
        raise InvalidParameter(
            f'"{name}" includes invalid characters for a local volume name, only '
            f'"{NAME_CHARS}" are allowed. If you intended to pass a host directory, use '
            "absolute path")


def created_at(ns: int) -> str:
    """Go's ``time.RFC3339`` of the daemon's local time (seconds; ``Z`` for UTC)."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


__all__ = ["LOCAL_DRIVER", "LOCAL_SCOPE", "ANONYMOUS_LABEL", "Volume", "VolumeUsage",
           "PruneReport", "CreateOptions", "validate_name", "created_at"]
