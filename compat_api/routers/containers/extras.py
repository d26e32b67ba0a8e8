"""Handlers for pause/unpause, top, stats, update, prune and changes."""

from __future__ import annotations

from aiohttp import web

from compat_api.render import no_content
from compat_api.routers.containers.backend import containers
from runtime.containers import freeze


async def pause(request: web.Request) -> web.Response:
    await freeze.pause(containers(request), request.match_info["id"])
    return no_content()


async def unpause(request: web.Request) -> web.Response:
    await freeze.unpause(containers(request), request.match_info["id"])
    return no_content()
