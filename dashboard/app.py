"""The dashboard's aiohttp application: static front end, /api/ JSON and websockets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from dashboard import api, live
from dashboard.appkeys import ENGINE, SECURE, SESSIONS
from dashboard.engine import EngineClient
from dashboard.security import Sessions, make_security_middleware

STATIC = Path(str(resources.files("dashboard") / "static"))
COMPAT_DOC = Path(str(resources.files("dashboard") / "data" / "compat.md"))


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def compat(request: web.Request) -> web.Response:
    """docs/compat.md as shipped with the package, rendered by the browser."""
    return web.Response(text=COMPAT_DOC.read_text(), content_type="text/markdown")


def create_app(engine_host: str, token: str, *, secure: bool = False, loopback_only: bool = True) -> web.Application:
    """The app fronting the engine at ``engine_host`` (``unix://...`` or ``tcp://...``).

    ``token`` is the access token a browser logs in with; ``secure`` marks the cookie Secure
    (TLS listener); ``loopback_only`` refuses requests whose Host is not a loopback name.
    """
    sessions = Sessions(token=token)
    app = web.Application(middlewares=[make_security_middleware(sessions, loopback_only), api.errors_middleware],
                          client_max_size=64 * 1024 ** 2)  # JSON forms and Dockerfiles; contexts and archives stream
    app[SESSIONS] = sessions
    app[SECURE] = secure

    async def open_engine(app: web.Application) -> None:
        app[ENGINE] = EngineClient(engine_host)

    async def close_engine(app: web.Application) -> None:
        await app[ENGINE].close()

    app.on_startup.append(open_engine)
    app.on_cleanup.append(close_engine)
    app.router.add_get("/", index)
    app.router.add_get("/api/compat", compat)
    app.router.add_routes(live.routes)
    app.router.add_routes(api.routes)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app
