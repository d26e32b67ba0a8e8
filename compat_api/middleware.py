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


def _hung_up(request: web.Request) -> web.StreamResponse:
    """What to hand back to aiohttp once the client is gone (or the stream is broken): the
    response already started, if any, whose completion then fails quietly."""
    prepared = request.get(PREPARED_RESPONSE)
    return prepared if prepared is not None else web.Response(status=499)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as ``{"message": ...}`` with the status of its category.

    A client that hangs up is normal (debug only). An unexpected exception is logged once,
    with its request line, and never reaches aiohttp (which would log it a second time)."""
    log.debug("Calling %s %s", request.method, request.path_qs)
    try:
        return await handler(request)
    except ConnectionError as exc:
        # the client went away mid-response (moby logs these as 499): nothing to answer
        log.debug("%s %s: client disconnected: %s", request.method, request.path, exc)
        return _hung_up(request)
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
        if request.get(RESPONSE_STARTED):
            return _broken(request)
        return _error_response(request, str(exc), status)
    except Exception as exc:  # noqa: BLE001 - the API must answer, not drop the connection
        status = status_for(exc, f"{request.method} {request.path_qs}")
        if request.get(RESPONSE_STARTED):
            # a streaming handler failed after its headers went out: no second response
            return _broken(request)
        return _error_response(request, str(exc) or type(exc).__name__, status)


def _broken(request: web.Request) -> web.StreamResponse:
    """Headers (and maybe data) went out already: cut the connection so the client sees
    a broken stream rather than a clean end."""
    if request.transport is not None:
        request.transport.close()
    return _hung_up(request)


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
PREPARED_RESPONSE = web.RequestKey("prepared_response", web.StreamResponse)


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook applying :func:`common_headers`."""
    response.headers.update(common_headers(request))
    request[RESPONSE_STARTED] = True
    request[PREPARED_RESPONSE] = response
