"""Registry endpoints of the image area: pull (``POST /images/create?fromImage=``), push,
``GET /distribution/{name}/json``; ``POST /auth`` is served by the system router with
:func:`login_response`.

Pull and push stream dockerd's progress records. As dockerd's write-flusher does, the
response only starts with the first record: a failure before it (an unknown manifest, a
refused login) is an ordinary HTTP error; one after it is reported in-band.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from compat_api.wire.goshapes import AUTH, check_body
from compat_api.params import json_body
from compat_api.render import json_response
from compat_api.routers.images.backend import images
from compat_api.streams.jsonmessage import JSONMessage, JsonMessageWriter
from runtime.errors import EngineError, InvalidParameter
from runtime.images.auth import AuthConfig, decode_registry_auth
from runtime.images.model import Progress
from runtime.images.distinspect import DistributionInfo
from runtime.images.reference import (
    InvalidReference,
    Reference,
    parse_digest,
    parse_normalized_named,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]


def pull_reference(from_image: str, tag: str) -> tuple[Reference, bool]:
    """``fromImage`` and ``tag`` as dockerd combines them: ``tag`` may be a digest; with
    neither a tag nor a digest every tag is pulled (``docker pull -a``)."""
    # "pull -a" of old clients may send a trailing ":"
    image = from_image.removesuffix(":")
    ref = parse_normalized_named(image)
    if tag:
        try:
            ref = ref.trimmed().with_digest(parse_digest(tag))
        except InvalidReference:
            ref = ref.with_tag(tag)
    return ref, ref.is_name_only


def registry_auth(request: web.Request) -> AuthConfig:
    return decode_registry_auth(request.headers.get("X-Registry-Auth", ""))


async def _write(writer: JsonMessageWriter, p: Progress) -> None:
    if p.aux is not None:
        # dockerd sends an empty progressDetail along with aux records
        message: JSONMessage = {"progressDetail": {}, "aux": dict(p.aux)}
        await writer.write(message)
    elif p.current is not None or p.total is not None:
        await writer.progress(p.status, id=p.id, current=p.current or 0, total=p.total or 0)
    else:
        await writer.status(p.status, id=p.id or None)


async def progress_stream(request: web.Request, run: Callable[[ProgressFn], Awaitable[Any]]) -> web.StreamResponse:
    """Run ``run(progress)`` and stream what it reports (see module docs)."""
    queue: asyncio.Queue[Progress] = asyncio.Queue()
    task = asyncio.ensure_future(run(queue.put_nowait))
    writer: JsonMessageWriter | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            item = getter.result()
            if writer is None:
                writer = await JsonMessageWriter.start(request)
            await _write(writer, item)
        while not queue.empty():
            if writer is None:
                writer = await JsonMessageWriter.start(request)
            await _write(writer, queue.get_nowait())
        exc = task.exception()
        if writer is None:
            if exc is not None:
                raise exc
            writer = await JsonMessageWriter.start(request)
        elif exc is not None:
            if not isinstance(exc, EngineError):
                log.error("registry operation failed after the stream started", exc_info=exc)
            await writer.error(str(exc) or type(exc).__name__)
        return await writer.finish()
    except ConnectionError:
        # the client went away: stop the operation, nothing more can be told
        if writer is None:
            raise
        return writer.response
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def pull(request: web.Request) -> web.StreamResponse:
    """``POST /images/create?fromImage=...&tag=...``."""
    service = images(request)
    ref, all_tags = pull_reference(request.query.get("fromImage", ""), request.query.get("tag", ""))
    auth = registry_auth(request)
    platform = request.query.get("platform", "")
    return await progress_stream(
        request, lambda progress: service.pull(ref, auth, progress, all_tags=all_tags, platform=platform)
    )


async def _push_auth(request: web.Request) -> AuthConfig:
    if "X-Registry-Auth" in request.headers:
        return registry_auth(request)
    # clients older than the header sent the AuthConfig as the body
    try:
        return AuthConfig.from_json(await json_body(request))
    except InvalidParameter:
        return AuthConfig()


async def push(request: web.Request) -> web.StreamResponse:
    """``POST /images/{name}/push?tag=``: one tag, or every tag without ``tag``."""
    service = images(request)
    ref = parse_normalized_named(request.match_info["name"])
    tag = request.query.get("tag", "")
    if tag:
        ref = ref.with_tag(tag)
    if ref.digest is not None:
        raise InvalidParameter("cannot push a digest reference")
    auth = await _push_auth(request)
    return await progress_stream(request, lambda progress: service.push(ref, auth, progress))


def render_distribution(info: DistributionInfo) -> dict[str, Any]:
    return {
        "Descriptor": {"mediaType": info.media_type, "digest": info.digest, "size": info.size},
        "Platforms": [dict(p) for p in info.platforms],
    }


async def distribution(request: web.Request) -> web.Response:
    """``GET /distribution/{name}/json``."""
    ref = parse_normalized_named(request.match_info["name"])
    if ref.digest is None:
        ref = ref.with_default_tag()
    info = await images(request).inspect_distribution(ref, registry_auth(request))
    return json_response(render_distribution(info))


async def login_response(request: web.Request) -> web.Response:
    """``POST /auth`` (routed by the system area)."""
    body = await json_body(request)
    check_body(body, AUTH)
    auth = AuthConfig.from_json(body)
    token = await images(request).login(auth)
    return json_response({"IdentityToken": token, "Status": "Login Succeeded"})


__all__ = ["distribution", "login_response", "progress_stream", "pull", "pull_reference", "push"]
