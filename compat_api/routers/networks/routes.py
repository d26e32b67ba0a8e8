"""Route table of the networks area (``/networks/`` is moby's unlisted list alias)."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.networks import handlers as h

ROUTES: list[Route] = [
    Route("GET", "/networks", h.list_networks),
    Route("GET", "/networks/", h.list_networks),
    Route("POST", "/networks/create", h.create),
    Route("POST", "/networks/prune", h.prune),
    Route("GET", "/networks/{id}", h.inspect),
    Route("DELETE", "/networks/{id}", h.remove),
    Route("POST", "/networks/{id}/connect", h.connect),
    Route("POST", "/networks/{id}/disconnect", h.disconnect),
]
