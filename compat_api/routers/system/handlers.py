"""Handlers of the system area."""

from __future__ import annotations

import asyncio
import os
import time

from aiohttp import web

from compat_api.adjustments import adjust_request
from compat_api.appkeys import ENGINE
from compat_api.convert.containers import render_summary
from compat_api.routers.images.render import summary as image_summary
from compat_api.params import api_version, filters_value
from compat_api.render import dumps, json_response
from compat_api.routers.system.render import render_info, render_version
from compat_api.routers.volumes.render import render_usage
from compat_api.versions import APIVersion
from runtime.errors import InvalidParameter, NoSwarm, Unavailable
from runtime.events import EVENT_FILTERS, Event, event_matches
from runtime.timefmt import parse_timestamp

_PING_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Builder-Version": "1",
    "Swarm": "inactive",
}


async def ping(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(
            status=200,
            headers={**_PING_HEADERS, "Content-Type": "text/plain; charset=utf-8", "Content-Length": "0"},
        )
    return web.Response(text="OK", headers=_PING_HEADERS, content_type="text/plain", charset="utf-8")


async def version(request: web.Request) -> web.Response:
    return json_response(render_version(request.app[ENGINE]))


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


async def info(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    listeners = len(engine.events._subscribers)
    return json_response(render_info(engine, api_version(request), open_fds=_open_fds(), listeners=listeners))


async def system_df(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    query = adjust_request("SystemDataUsage", api_version(request), {"type": request.query.getall("type", [])})
    wanted = set(query.get("type") or ())
    valid = {"container", "image", "volume", "build-cache"}
    for kind in wanted:
        if kind not in valid:
            raise InvalidParameter(f"unknown object type: {kind}")
    usage = engine.disk_usage()
    version = api_version(request)
    body: dict[str, object] = {}
    if not wanted or "image" in wanted:
        body["LayersSize"] = usage.layers_size
        body["Images"] = [image_summary(item, version) for item in usage.images]
    if not wanted or "container" in wanted:
        body["Containers"] = [
            render_summary(container, version, size=sizes) for container, sizes in usage.containers
        ]
    if not wanted or "volume" in wanted:
        body["Volumes"] = [render_usage(item) for item in usage.volumes]
    if not wanted or "build-cache" in wanted:
        body["BuildCache"] = []
    return json_response(body)


def render_event(event: Event, version: APIVersion) -> dict[str, object]:
    body: dict[str, object] = {}
    if version < APIVersion(1, 52) and event.type in ("container", "image"):
        # deprecated top-level fields dockerd still fills for these two types
        body["status"] = event.action
        body["id"] = event.actor_id
        if event.type == "container" and event.attributes.get("image"):
            body["from"] = event.attributes["image"]
    body.update(
        {
            "Type": event.type,
            "Action": event.action,
            "Actor": {"ID": event.actor_id, "Attributes": dict(event.attributes)},
            "scope": event.scope,
            "time": event.time_nano // 1_000_000_000,
            "timeNano": event.time_nano,
        }
    )
    return body


def _timestamp_param(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key, "")
    if raw == "":
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise InvalidParameter(f"failed to parse value {raw} as time") from None


async def events(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    since = _timestamp_param(request, "since")
    until = _timestamp_param(request, "until")
    filters = filters_value(request)
    filters.validate(EVENT_FILTERS)
    version = api_version(request)
    now = time.time_ns()
    if since is not None and until is not None and since > until:
        raise InvalidParameter(
            f"`since` time ({request.query['since']}) cannot be after `until` time ({request.query['until']})"
        )
    # subscribe before reading history so nothing falls between the two
    subscription = engine.events.subscribe()
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        last_sent = 0
        if since is not None:
            for event in engine.events.history(since, until):
                if event_matches(event, filters):
                    await response.write(dumps(render_event(event, version)))
                last_sent = event.time_nano
        if until is not None and until <= now:
            return response
        deadline = None if until is None else (until - now) / 1e9
        try:
            async with asyncio.timeout(deadline):
                async for event in subscription:
                    if event.time_nano <= last_sent:
                        continue
                    if until is not None and event.time_nano > until:
                        break
                    if event_matches(event, filters):
                        await response.write(dumps(render_event(event, version)))
        except TimeoutError:
            pass
        return response
    finally:
        subscription.close()


async def no_swarm(request: web.Request) -> web.Response:
    raise NoSwarm()


async def swarm_leave(request: web.Request) -> web.Response:
    raise Unavailable("This node is not part of a swarm")


async def plugins_list(request: web.Request) -> web.Response:
    filters_value(request).validate({"capability", "enable"})
    return json_response([])
