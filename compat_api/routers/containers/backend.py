"""What the container and exec routers need from the engine.

``runtime.engine.Engine`` provides ``containers`` (a ContainerService) and ``execs`` (an
ExecService); tests build the app with an engine-like object carrying the same two.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

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


_FILES: WeakKeyDictionary[ContainerService, ContainerFiles] = WeakKeyDictionary()


def files(request: web.Request) -> ContainerFiles:
    """``docker cp`` / export on the engine's container service (one per service)."""
    service = containers(request)
    found = _FILES.get(service)
    if found is None:
        found = _FILES[service] = ContainerFiles(service, service.rootfs)
    return found


__all__ = ["containers", "execs", "files"]
