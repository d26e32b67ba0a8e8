"""What the images router needs from the engine: ``engine.images``, a
``runtime.images.ImageService`` (tests attach one to an engine-like object)."""

from __future__ import annotations

from aiohttp import web

from compat_api.appkeys import ENGINE
from runtime.errors import NotImplementedFeature
from runtime.images.service import ImageService


def images(request: web.Request) -> ImageService:
    service = getattr(request.app[ENGINE], "images", None)
    if service is None:
        raise NotImplementedFeature("images are not available in this engine")
    return service  # type: ignore[no-any-return]


__all__ = ["images"]
