"""Route table of the container area."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.containers import extras as x
from compat_api.routers.containers import files as f
from compat_api.routers.containers import handlers as h

ROUTES: list[Route] = [
    Route("POST", "/containers/create", h.create),
    Route("POST", "/containers/prune", x.prune),
    Route("GET", "/containers/json", h.list_),
    Route("GET", "/containers/{id}/json", h.inspect),
    Route("POST", "/containers/{id}/start", h.start),
    Route("POST", "/containers/{id}/stop", h.stop),
    Route("POST", "/containers/{id}/restart", h.restart),
    Route("POST", "/containers/{id}/kill", h.kill),
    Route("POST", "/containers/{id}/wait", h.wait),
    Route("DELETE", "/containers/{id}", h.remove),
    Route("DELETE", "/containers/{parent}/{alias}", h.remove_link),
    Route("POST", "/containers/{id}/rename", h.rename),
    Route("POST", "/containers/{id}/resize", h.resize),
    Route("GET", "/containers/{id}/logs", h.logs),
    Route("POST", "/containers/{id}/attach", h.attach),
    Route("POST", "/commit", h.commit),
    Route("HEAD", "/containers/{id}/archive", f.archive_head),
    Route("GET", "/containers/{id}/archive", f.archive_get),
    Route("PUT", "/containers/{id}/archive", f.archive_put),
    Route("GET", "/containers/{id}/export", f.export),
    Route("GET", "/containers/{id}/changes", f.changes),
    Route("POST", "/containers/{id}/pause", x.pause),
    Route("POST", "/containers/{id}/unpause", x.unpause),
    Route("GET", "/containers/{id}/stats", x.stats),
    Route("GET", "/containers/{id}/top", x.top),
    Route("POST", "/containers/{id}/update", x.update),
]
