"""Wire shapes of volumes (``Volume``, ``VolumeListResponse`` and ``VolumePruneResponse``
of the v1.50 spec), as dockerd fills them."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from runtime.volumes.model import PruneReport, Volume, VolumeUsage, created_at


class UsageData(TypedDict):
    Size: int
    RefCount: int


class VolumeBody(TypedDict):
    CreatedAt: str
    Driver: str
    Labels: dict[str, str] | None
    Mountpoint: str
    Name: str
    Options: dict[str, str] | None
    Scope: str
    UsageData: NotRequired[UsageData]


class VolumeListBody(TypedDict):
    Volumes: list[VolumeBody]
    Warnings: list[str] | None


class VolumePruneBody(TypedDict):
    VolumesDeleted: list[str]
    SpaceReclaimed: int


def render_volume(volume: Volume) -> VolumeBody:
    """dockerd's field order; ``Labels``/``Options`` are ``null`` when never given, and
    ``Status`` is left out (the local driver reports none)."""
    return {
        "CreatedAt": created_at(volume.created_ns),
        "Driver": volume.driver,
        "Labels": None if volume.labels is None else dict(volume.labels),
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": None if volume.options is None else dict(volume.options),
        "Scope": volume.scope,
    }


def render_usage(usage: VolumeUsage) -> VolumeBody:
    """A volume in ``/system/df``, with ``UsageData``."""
    body = render_volume(usage.volume)
    body["UsageData"] = {"RefCount": usage.ref_count, "Size": usage.size}
    return body


def render_list(volumes: list[Volume], warnings: list[str] | None = None) -> VolumeListBody:
    # dockerd sends "Warnings": null when no driver had anything to say
    return {"Volumes": [render_volume(v) for v in volumes], "Warnings": warnings or None}


def render_prune(report: PruneReport) -> VolumePruneBody:
    return {"VolumesDeleted": list(report.deleted), "SpaceReclaimed": report.space_reclaimed}


__all__ = ["render_volume", "render_usage", "render_list", "render_prune"]
