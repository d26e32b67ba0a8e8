"""Image domain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from runtime.storage.digest import chain_ids
from runtime.timefmt import parse_rfc3339

EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


@dataclass(frozen=True, slots=True)
class Image:
    """An image as the engine knows it.

    ``config`` is the parsed image config JSON (the runtime configuration is under the
    key ``"config"``); ``raw_config`` holds its exact bytes, whose SHA-256 is ``id``.
    ``repo_tags``/``repo_digests`` are in familiar form (``busybox:latest``).
    """

    id: str
    config: Mapping[str, Any]
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    created: str = ""  # RFC 3339 from the config ("" when absent)
    size: int = 0  # bytes of all layers, as dockerd reports an image's size
    parent: str = ""  # local parent image ID (commit/build), "" when none
    last_tag_time: str = ""
    raw_config: bytes = field(default=b"", repr=False, compare=False)

    @property
    def runtime_config(self) -> Mapping[str, Any]:
        value = self.config.get("config")
        return value if isinstance(value, Mapping) else MappingProxyType({})

    @property
    def labels(self) -> Mapping[str, str]:
        labels = self.runtime_config.get("Labels")
        return labels if isinstance(labels, Mapping) else MappingProxyType({})

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs") or {}
        return list(rootfs.get("diff_ids") or [])

    @property
    def chain_id(self) -> str | None:
        ids = chain_ids(self.diff_ids)
        return ids[-1] if ids else None

    @property
    def created_ns(self) -> int:
        if not self.created:
            return 0
        try:
            return parse_rfc3339(_trim_fraction(self.created))
        except ValueError:
            return 0

    @property
    def history(self) -> list[Mapping[str, Any]]:
        return list(self.config.get("history") or [])


def _trim_fraction(text: str) -> str:
    # Go writes up to 9 fraction digits; other tools sometimes write more
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = ""
    i = 0
    while i < len(rest) and rest[i].isdigit():
        digits += rest[i]
        i += 1
    return f"{head}.{digits[:9]}{rest[i:]}"


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of ``GET /images/json`` (wire shaping is the API layer's job)."""

    image: Image
    containers: int = -1  # -1: not computed (dockerd's convention)
    shared_size: int = -1


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: str  # image ID, or "<missing>" for layers of images not present locally
    created: int  # Unix seconds
    created_by: str
    tags: tuple[str, ...]
    size: int
    comment: str


@dataclass(frozen=True, slots=True)
class DeleteItem:
    """One ``DELETE /images/{name}`` result line: either ``untagged`` or ``deleted``."""

    untagged: str = ""
    deleted: str = ""


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: tuple[DeleteItem, ...]
    space_reclaimed: int


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress record for JSON-message streams (import, load, save...).

    ``stream`` carries text lines (``Loaded image: busybox:latest\\n``); ``status``/``id``
    with optional ``current``/``total`` carry progress bars."""

    status: str = ""
    id: str = ""
    current: int | None = None
    total: int | None = None
    stream: str | None = None
    aux: Mapping[str, Any] | None = None
