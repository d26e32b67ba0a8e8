"""Route tables of every API area. Each area module exposes ``ROUTES: list[Route]``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # without the /vX.Y prefix
    handler: Handler


def all_routes() -> list[Route]:
    """Every route of every area, in registration order."""
    import importlib
    import pkgutil

    routes: list[Route] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}.routes")
        routes.extend(module.ROUTES)
    return routes
