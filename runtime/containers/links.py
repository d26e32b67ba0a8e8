"""Legacy ``--link`` entries of a container record (``HostConfig.Links``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol


class _Linking(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def host_config(self) -> Any: ...


def link_alias(entry: str) -> str:
    """The alias of one ``HostConfig.Links`` entry (``name:alias``, ``/name:/parent/alias``
    or just ``name``)."""
    target, _, alias = entry.partition(":")
    return (alias or target).rsplit("/", 1)[-1]


def canonical_link(entry: str, parent_name: str) -> str:
    """dockerd's stored form of a ``--link``: ``/target:/parent/alias``."""
    target = entry.partition(":")[0].strip("/")
    return f"/{target}:/{parent_name.strip('/')}/{link_alias(entry)}"


def link_names(containers: Iterable[_Linking], lookup: Callable[[str], _Linking | None]) -> dict[str, list[str]]:
    """Container ID -> its extra names ``/<parent>/<alias>``, one per legacy link to it
    from a container on the default bridge (dockerd lists them in ``Names``)."""
    names: dict[str, list[str]] = {}
    for parent in sorted(containers, key=lambda c: c.name):
        if (parent.host_config.network_mode or "default") not in ("default", "bridge"):
            continue
        for entry in parent.host_config.links or ():
            target = lookup(entry.partition(":")[0].strip("/"))
            if target is not None:
                names.setdefault(target.id, []).append(f"/{parent.name.strip('/')}/{link_alias(entry)}")
    return names


def without_link(links: tuple[str, ...] | None, alias: str) -> tuple[str, ...] | None:
    """``links`` without the entry for ``alias``; None when there is no such link."""
    kept = tuple(entry for entry in links or () if link_alias(entry) != alias)
    if len(kept) == len(links or ()):
        return None
    return kept


__all__ = ["link_alias", "canonical_link", "link_names", "without_link"]
