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


_JSON_ERRORS_SINCE = APIVersion(1, 24)


def _error_response(request: web.Request, message: str, status: int) -> web.Response:
    raw = request.match_info.get("version")
    requested = APIVersion.parse(raw) if raw else None
    if requested is not None and requested < _JSON_ERRORS_SINCE:
        # dockerd answers clients older than 1.24 with plain-text errors
        return web.Response(
            text=message + "\n", status=status, content_type="text/plain", charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return json_response({"message": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as ``{"message": ...}`` with the status of its category."""
    log.debug("Calling %s %s", request.method, request.path_qs)
    try:
        return await handler(request)
    except ConnectionResetError as exc:
        # the client went away mid-response (moby logs these as 499): nothing to answer
        log.debug("%s %s: client disconnected: %s", request.method, request.path, exc)
        raise
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            # dockerd answers unknown paths and wrong methods alike
            return _error_response(request, "page not found", 404)
        raise
    except EngineError as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        else:
            log.debug("%s %s: %s", request.method, request.path, exc)
        if status == 304:
            return web.Response(status=304)
        return _error_response(request, str(exc), status)
    except Exception as exc:  # noqa: BLE001 - the API must answer, not drop the connection
        if request.get(RESPONSE_STARTED):
            # a streaming handler failed after its headers went out: no second response
            log.error("%s %s failed while streaming: %r", request.method, request.path, exc)
            raise
        status = status_for(exc)
        return _error_response(request, str(exc) or type(exc).__name__, status)


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


RESPONSE_STARTED = web.RequestKey("response_started", bool)


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook applying :func:`common_headers`."""
    response.headers.update(common_headers(request))
    request[RESPONSE_STARTED] = True
