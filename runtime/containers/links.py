"""Legacy ``--link`` entries of a container record (``HostConfig.Links``)."""

from __future__ import annotations


def link_alias(entry: str) -> str:
    """The alias of one ``HostConfig.Links`` entry (``name:alias``, ``/name:/parent/alias``
    or just ``name``)."""
    target, _, alias = entry.partition(":")
    return (alias or target).rsplit("/", 1)[-1]


def canonical_link(entry: str, parent_name: str) -> str:
    """dockerd's stored form of a ``--link``: ``/target:/parent/alias``."""
    target = entry.partition(":")[0].strip("/")
    return f"/{target}:/{parent_name.strip('/')}/{link_alias(entry)}"


def without_link(links: tuple[str, ...] | None, alias: str) -> tuple[str, ...] | None:
    """``links`` without the entry for ``alias``; None when there is no such link."""
    kept = tuple(entry for entry in links or () if link_alias(entry) != alias)
    if len(kept) == len(links or ()):
        return None
    return kept


__all__ = ["link_alias", "canonical_link", "without_link"]
