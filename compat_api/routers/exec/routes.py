"""Route table of the exec area."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.exec import handlers as h

ROUTES: list[Route] = [
    Route("POST", "/containers/{id}/exec", h.create),
    Route("GET", "/exec/{id}/json", h.inspect),
    Route("POST", "/exec/{id}/start", h.start),
    Route("POST", "/exec/{id}/resize", h.resize),
]
