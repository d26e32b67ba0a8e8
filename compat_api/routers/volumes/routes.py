"""Route table of the volumes area (names may contain anything, as moby's ``{name:.*}``)."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.volumes import handlers as h

ROUTES: list[Route] = [
    Route("GET", "/volumes", h.list_volumes),
    Route("POST", "/volumes/create", h.create),
    Route("POST", "/volumes/prune", h.prune),
    Route("GET", "/volumes/{name:.+}", h.inspect),
    Route("PUT", "/volumes/{name:.+}", h.update),
    Route("DELETE", "/volumes/{name:.+}", h.remove),
]
