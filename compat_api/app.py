"""Build the aiohttp application: routes (unversioned and /vX.Y), middlewares, headers."""

from __future__ import annotations

from aiohttp import web

from compat_api.appkeys import ENGINE
from compat_api.idle_trim import IdleTrim
from compat_api.middleware import add_common_headers, error_middleware, version_middleware
from compat_api.routers import Route, all_routes
from compat_api.streams.hijack import enable_tcp_upgrade
from runtime.engine import Engine
from runtime.linux.heap import trim_heap

VERSION_PREFIX = r"/v{version:[0-9][0-9.]*}"

# Streamed bodies (build contexts, image tars) are read from request.content and are not
# bounded by this; it only caps bodies read whole (JSON).
MAX_BUFFERED_BODY = 64 * 1024 * 1024


async def _options(request: web.Request) -> web.Response:
    # dockerd answers OPTIONS on any path (CORS preflight)
    return web.Response(status=200)


def create_app(engine: Engine, routes: list[Route] | None = None) -> web.Application:
    # attach/exec send `Upgrade: tcp` and may send stdin right after the headers
    enable_tcp_upgrade()
    # free heap pages go back to the kernel a second after the last request (2 MB at rest)
    idle = IdleTrim(trim_heap)
    app = web.Application(
        middlewares=[idle.middleware, error_middleware, version_middleware],
        client_max_size=MAX_BUFFERED_BODY,
        handler_args={"max_field_size": 65536},
    )
    app[ENGINE] = engine
    app.on_response_prepare.append(add_common_headers)
    for route in routes if routes is not None else all_routes():
        for prefix in ("", VERSION_PREFIX):
            app.router.add_route(route.method, prefix + route.path, route.handler)
    app.router.add_route("OPTIONS", "/{tail:.*}", _options)

    async def _startup_done(_: web.Application) -> None:
        idle.mark()  # startup's imports leave the most behind

    async def _stop_timer(_: web.Application) -> None:
        idle.close()

    app.on_startup.append(_startup_done)
    app.on_cleanup.append(_stop_timer)
    return app
