"""Middlewares: API version prefix and range, common headers, errors rendered as JSON."""

from __future__ import annotations

import logging
import platform

from aiohttp import web
from aiohttp.typedefs import Handler

from compat_api.appkeys import API_VERSION, ENGINE
from compat_api.errors import status_for
from compat_api.render import json_response
from compat_api.versions import ENGINE_VERSION, MAX_API_VERSION, MIN_API_VERSION, APIVersion
from runtime.errors import EngineError, InvalidParameter

log = logging.getLogger(__name__)

SERVER_HEADER = f"Docker/{ENGINE_VERSION} ({platform.system().lower()})"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as ``{"message": ...}`` with the status of its category."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            # dockerd answers unknown paths and wrong methods alike
            return json_response({"message": "page not found"}, status=404)
        raise
    except EngineError as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        else:
            log.debug("%s %s: %s", request.method, request.path, exc)
        if status == 304:
            return web.Response(status=304)
        return json_response({"message": str(exc)}, status=status)
    except Exception as exc:  # noqa: BLE001 - the API must answer, not drop the connection
        status = status_for(exc)
        return json_response({"message": str(exc) or type(exc).__name__}, status=status)


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the ``/vX.Y`` prefix into ``request[API_VERSION]`` and enforce the served range."""
    raw = request.match_info.get("version")
    if raw is None:
        version = MAX_API_VERSION
    else:
        parsed = APIVersion.parse(raw)
        if parsed is None:
            raise InvalidParameter(f"invalid API version: {raw}")
        if parsed < MIN_API_VERSION:
            raise InvalidParameter(
                f"client version {raw} is too old. Minimum supported API version is "
                f"{MIN_API_VERSION}, please upgrade your client to a newer version"
            )
        if parsed > MAX_API_VERSION:
            raise InvalidParameter(
                f"client version {raw} is too new. Maximum supported API version is {MAX_API_VERSION}"
            )
        version = parsed
    request[API_VERSION] = version
    return await handler(request)


def common_headers(request: web.Request) -> dict[str, str]:
    """The headers dockerd puts on every response (hijacked streams add them by hand)."""
    experimental = request.app[ENGINE].config.experimental
    return {
        "Server": SERVER_HEADER,
        "Api-Version": str(MAX_API_VERSION),
        "Ostype": "linux",
        "Docker-Experimental": "true" if experimental else "false",
    }


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook applying :func:`common_headers`."""
    response.headers.update(common_headers(request))
