"""Route table of the build area. ``/session`` and ``/grpc`` (BuildKit) are not served:
their 404 is what tells buildx that this daemon has no BuildKit."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.build import handlers as h

ROUTES: list[Route] = [
    Route("POST", "/build", h.build_image),
    Route("POST", "/build/prune", h.prune),
    Route("POST", "/build/cancel", h.cancel),
]
