"""What the volumes router needs from the engine: ``engine.volumes``, a
``runtime.volumes.service.VolumeService`` (tests pass an engine-like object)."""

from __future__ import annotations

from aiohttp import web

from compat_api.appkeys import ENGINE
from runtime.errors import NotImplementedFeature
from runtime.volumes.service import VolumeService


def volumes(request: web.Request) -> VolumeService:
    service = getattr(request.app[ENGINE], "volumes", None)
    if service is None:
        raise NotImplementedFeature("volumes are not available in this engine")
    return service  # type: ignore[no-any-return]


__all__ = ["volumes"]
