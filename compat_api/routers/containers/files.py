"""Handlers for a container's files: ``/archive`` (HEAD, GET, PUT) and ``/export``."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from compat_api.params import bool_value
from compat_api.render import json_response
from compat_api.routers.containers.backend import files
from runtime.containers.files import PathStat
from runtime.errors import InvalidParameter
from runtime.timefmt import rfc3339_nano

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if path == "":
        # moby's badParameterError, missing space included
        raise InvalidParameter("bad parameter: pathcannot be empty")
    return path


def stat_header(stat: PathStat) -> str:
    """base64 of ``types.ContainerPathStat`` as JSON (Go's field order)."""
    body = {"name": stat.name, "size": stat.size, "mode": stat.mode,
            "mtime": rfc3339_nano(stat.mtime_ns) if stat.mtime_ns else "1970-01-01T00:00:00Z",
            "linkTarget": stat.link_target}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(raw).decode()


async def archive_head(request: web.Request) -> web.Response:
    stat = await files(request).stat(request.match_info["id"], _path(request))
    return web.Response(status=200, headers={STAT_HEADER: stat_header(stat)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    stat, chunks = await files(request).archive(request.match_info["id"], _path(request))
    response = web.StreamResponse(headers={STAT_HEADER: stat_header(stat),
                                           "Content-Type": "application/x-tar"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    await response.write_eof()
    return response


async def archive_put(request: web.Request) -> web.Response:
    await files(request).extract(
        request.match_info["id"], _path(request), request.content,
        no_overwrite_dir_non_dir=bool_value(request, "noOverwriteDirNonDir"),
        copy_uid_gid=bool_value(request, "copyUIDGID"))
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    chunks = await files(request).export(request.match_info["id"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    await response.write_eof()
    return response


async def changes(request: web.Request) -> web.Response:
    found = await files(request).changes(request.match_info["id"])
    # dockerd answers null, not [], for a container without changes
    return json_response([{"Path": c.path, "Kind": int(c.kind)} for c in found] or None)
