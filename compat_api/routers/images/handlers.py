"""Handlers of the image area: parse the request, call the ImageService, render."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from compat_api.adjustments import adjust_request
from compat_api.params import api_version, bool_value, filters_value, int_value
from compat_api.render import json_response
from compat_api.routers.images import distribution, render
from compat_api.routers.images.backend import images
from compat_api.streams.jsonmessage import JsonMessageWriter
from compat_api.versions import APIVersion
from builder.changes import build_from_config
from runtime.errors import InvalidParameter, NotImplementedFeature
from runtime.images.model import Progress

V1_51 = APIVersion(1, 51)


async def create(request: web.Request) -> web.StreamResponse:
    """``POST /images/create``: pull (``fromImage``) or import from the body
    (``fromSrc=-``)."""
    service = images(request)
    query = request.query
    src = query.get("fromSrc", "")
    if query.get("fromImage", ""):
        return await distribution.pull(request)
    if not src:
        raise InvalidParameter("either fromImage or fromSrc must be specified")
    if src != "-":
        raise NotImplementedFeature(f"importing from a URL ({src}) is not supported by this daemon")
    image = await service.import_image(
        request.content,
        repo=query.get("repo", ""),
        tag=query.get("tag", ""),
        message=query.get("message", ""),
        config=build_from_config({}, query.getall("changes", [])),
        src=src,
    )
    # dockerd reports the import's result as one status line once the work is done
    writer = await JsonMessageWriter.start(request)
    await writer.status(image.id)
    return await writer.finish()


async def list_(request: web.Request) -> web.Response:
    service = images(request)
    version = api_version(request)
    filters = filters_value(request)
    query = adjust_request("ImageList", version, {"filter": request.query.get("filter", ""),
                                                  "filters": {k: list(v) for k, v in filters.values.items()}})
    filters = type(filters).of(query["filters"])
    rows = service.list_images(
        filters=filters,
        all=bool_value(request, "all"),
        shared_size=bool(adjust_request("ImageList", version, {"shared-size": bool_value(request, "shared-size")})
                         .get("shared-size")),
        container_count=version >= V1_51,
    )
    return json_response([render.summary(row, version) for row in rows])


async def inspect(request: web.Request) -> web.Response:
    service = images(request)
    image = service.get(request.match_info["name"])
    return json_response(render.inspect(image, service.graph_driver(image), api_version(request)))


async def history(request: web.Request) -> web.Response:
    service = images(request)
    return json_response([render.history_item(h) for h in service.history(request.match_info["name"])])


async def tag(request: web.Request) -> web.Response:
    await images(request).tag(request.match_info["name"], request.query.get("repo", ""), request.query.get("tag", ""))
    return web.Response(status=201)


async def delete(request: web.Request) -> web.Response:
    records = await images(request).delete(
        request.match_info["name"],
        force=bool_value(request, "force"),
        prune=not bool_value(request, "noprune"),
    )
    return json_response([{"Untagged": r.untagged} if r.untagged else {"Deleted": r.deleted} for r in records])


async def prune(request: web.Request) -> web.Response:
    report = await images(request).prune(filters_value(request))
    deleted = [{"Untagged": r.untagged} if r.untagged else {"Deleted": r.deleted} for r in report.deleted]
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": report.space_reclaimed})


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    chunks = await images(request).save(names)  # name errors surface here, before headers
    response = web.StreamResponse(status=200)
    response.content_type = "application/x-tar"
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except ConnectionError:
        return response
    finally:
        with contextlib.suppress(Exception):
            await chunks.aclose()  # type: ignore[attr-defined]
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def save_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def save_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, request.query.getall("names", []))


async def load(request: web.Request) -> web.StreamResponse:
    """``POST /images/load``: progress and ``Loaded image`` lines as JSON messages. As in
    dockerd the answer is always 200 and a failure is reported in-band, so the CLI prints
    it as the daemon's own text."""
    service = images(request)
    quiet = bool_value(request, "quiet")
    queue: asyncio.Queue[Progress] = asyncio.Queue()
    task = asyncio.ensure_future(service.load(request.content, quiet=quiet, progress=queue.put_nowait))
    try:
        writer = await JsonMessageWriter.start(request)
        async with writer.reporting_errors():
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await _write_progress(writer, getter.result())
            while not queue.empty():
                await _write_progress(writer, queue.get_nowait())
            task.result()
        return await writer.finish()
    finally:
        if not task.done():
            task.cancel()


async def _write_progress(writer: JsonMessageWriter, p: Progress) -> None:
    if p.stream is not None:
        await writer.stream(p.stream)
    elif p.aux is not None:
        await writer.aux(dict(p.aux))
    elif p.current is not None or p.total is not None:
        await writer.progress(p.status, id=p.id, current=p.current or 0, total=p.total or 0)
    else:
        await writer.status(p.status, id=p.id or None)


async def search(request: web.Request) -> web.Response:
    term = request.query.get("term", "")
    limit = int_value(request, "limit", 25)
    results: list[dict[str, Any]] = await images(request).search(term, limit)
    return json_response(results)
