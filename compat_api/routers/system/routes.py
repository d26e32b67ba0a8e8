"""Route table of the system area (incl. the swarm family, which answers 503)."""

from __future__ import annotations

from compat_api.routers import Route
from compat_api.routers.images.distribution import login_response
from compat_api.routers.system import handlers as h

_SWARM_PATHS = [
    ("GET", "/swarm"), ("POST", "/swarm/init"), ("POST", "/swarm/join"),
    ("POST", "/swarm/unlock"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/update"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"), ("POST", "/nodes/{id}/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"), ("POST", "/services/{id}/update"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"), ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"), ("POST", "/configs/{id}/update"),
]

ROUTES: list[Route] = [
    Route("GET", "/_ping", h.ping),
    Route("HEAD", "/_ping", h.ping),
    Route("GET", "/version", h.version),
    Route("GET", "/info", h.info),
    Route("GET", "/system/df", h.system_df),
    Route("GET", "/events", h.events),
    Route("GET", "/plugins", h.plugins_list),
    Route("POST", "/auth", login_response),
    Route("POST", "/swarm/leave", h.swarm_leave),
    *[Route(method, path, h.no_swarm) for method, path in _SWARM_PATHS],
]
