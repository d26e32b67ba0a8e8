"""Route table of the image area. Names may contain slashes (``localhost:5000/a/b:t``),
so ``{name:.+}`` routes come after the fixed paths they would otherwise shadow."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.images import distribution as d
from compat_api.routers.images import handlers as h

ROUTES: list[Route] = [
    Route("POST", "/images/create", h.create),
    Route("GET", "/images/json", h.list_),
    Route("GET", "/images/search", h.search),
    Route("GET", "/images/get", h.save_many),
    Route("POST", "/images/load", h.load),
    Route("POST", "/images/prune", h.prune),
    Route("GET", "/images/{name:.+}/json", h.inspect),
    Route("GET", "/images/{name:.+}/history", h.history),
    Route("GET", "/images/{name:.+}/get", h.save_one),
    Route("POST", "/images/{name:.+}/tag", h.tag),
    Route("POST", "/images/{name:.+}/push", d.push),
    Route("GET", "/distribution/{name:.+}/json", d.distribution),
    Route("DELETE", "/images/{name:.+}", h.delete),
]
