"""What the networks router needs from the engine: ``engine.networking``, a
``runtime.network.service.NetworkService`` (tests pass an engine-like object)."""

from __future__ import annotations

from aiohttp import web

from compat_api.appkeys import ENGINE
from runtime.errors import NotImplementedFeature
from runtime.network.service import NetworkService


def networking(request: web.Request) -> NetworkService:
    service = getattr(request.app[ENGINE], "networking", None)
    if service is None:
        raise NotImplementedFeature("networking is not available in this engine")
    return service  # type: ignore[no-any-return]


__all__ = ["networking"]
