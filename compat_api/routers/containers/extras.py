"""Handlers for pause/unpause, top, stats, update, prune and changes."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from compat_api.convert.containers import host_config_from_wire
from compat_api.params import (
    bool_value, bool_value_or_default, filters_value, json_body,
)
from compat_api.render import dumps, json_response, no_content
from compat_api.routers.containers.backend import containers
from compat_api.routers.containers.statsjson import render_stats
from runtime.errors import InvalidParameter


async def pause(request: web.Request) -> web.Response:
    await containers(request).pause(request.match_info["id"])
    return no_content()


async def unpause(request: web.Request) -> web.Response:
    await containers(request).unpause(request.match_info["id"])
    return no_content()


async def stats(request: web.Request) -> web.StreamResponse:
    stream = bool_value_or_default(request, "stream", True)
    one_shot = bool_value(request, "one-shot")
    if one_shot and stream:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    frames = await containers(request).stats(request.match_info["id"], stream, one_shot)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if stream:
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for frame in frames:
            await response.write(dumps(render_stats(frame)))
    except (ConnectionError, RuntimeError):
        return response  # the client went away (docker stats closes the stream)
    finally:
        await frames.aclose()  # type: ignore[attr-defined]
    await response.write_eof()
    return response


async def top(request: web.Request) -> web.Response:
    result = await containers(request).top(request.match_info["id"],
                                          request.query.get("ps_args", ""))
    return json_response({"Processes": [list(p) for p in result.processes],
                          "Titles": list(result.titles)})


async def update(request: web.Request) -> web.Response:
    body = await json_body(request)
    host = host_config_from_wire(body, update=True)
    policy = body.get("RestartPolicy") if isinstance(body, dict) else None
    if not isinstance(policy, dict) or not policy.get("Name"):
        # absent or empty: unchanged (the wire default would read as "no")
        host = replace(host, restart_policy=replace(host.restart_policy, name=""))
    warnings = await containers(request).update(request.match_info["id"], host)
    # dockerd's Warnings is a nil slice unless something was discarded
    return json_response({"Warnings": warnings or None})


async def prune(request: web.Request) -> web.Response:
    report = await containers(request).prune(filters_value(request))
    return json_response({"ContainersDeleted": list(report.deleted) or None,
                          "SpaceReclaimed": report.reclaimed})
