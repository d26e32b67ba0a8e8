"""What the container and exec routers need from the engine.

``runtime.engine.Engine`` provides ``containers`` (a ContainerService) and ``execs`` (an
ExecService); tests build the app with an engine-like object carrying the same two.
"""

from __future__ import annotations

from aiohttp import web

from compat_api.appkeys import ENGINE
from runtime.containers.execs import ExecService
from runtime.containers.files import ContainerFiles
from runtime.containers.service import ContainerService
from runtime.errors import NotImplementedFeature


def containers(request: web.Request) -> ContainerService:
    service = getattr(request.app[ENGINE], "containers", None)
    if service is None:
        raise NotImplementedFeature("containers are not available in this engine")
    return service  # type: ignore[no-any-return]


def execs(request: web.Request) -> ExecService:
    service = getattr(request.app[ENGINE], "execs", None)
    if service is None:
        raise NotImplementedFeature("exec is not available in this engine")
    return service  # type: ignore[no-any-return]


def files(request: web.Request) -> ContainerFiles:
    """``docker cp`` / export / diff on the engine's containers (built by the service)."""
    return containers(request).files


__all__ = ["containers", "execs", "files"]
