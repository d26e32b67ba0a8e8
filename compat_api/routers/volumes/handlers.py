"""Handlers of the volumes area: parse, call the volume service, render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from compat_api.adjustments import adjust_request
from compat_api.params import api_version, bool_value, filters_value, json_body
from compat_api.render import json_response
from compat_api.routers.volumes.backend import volumes
from compat_api.routers.volumes.render import render_list, render_prune, render_volume
from compat_api.versions import APIVersion
from compat_api.wire.goshapes import VOLUME_CREATE, check_body
from runtime.errors import NoSwarm, Unavailable
from runtime.filters import Filters

# cluster (swarm) volumes arrived with 1.42: PUT exists from then on, and prune keeps
# named volumes unless asked for all
CLUSTER_VOLUMES = APIVersion(1, 42)


def _str_map(body: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    return None if value is None else {str(k): str(v) for k, v in value.items()}


async def list_volumes(request: web.Request) -> web.Response:
    return json_response(render_list(volumes(request).list(filters_value(request))))


async def create(request: web.Request) -> web.Response:
    body = adjust_request("VolumeCreate", api_version(request), dict(await json_body(request)))
    if body.get("ClusterVolumeSpec") is not None:
        raise NoSwarm()
    check_body(body, VOLUME_CREATE)
    volume = volumes(request).create(
        name=str(body.get("Name") or ""), driver=str(body.get("Driver") or ""),
        driver_opts=_str_map(body, "DriverOpts"), labels=_str_map(body, "Labels"),
    )
    return json_response(render_volume(volume), status=201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(render_volume(volumes(request).get(request.match_info["name"])))


async def remove(request: web.Request) -> web.Response:
    volumes(request).remove(request.match_info["name"], force=bool_value(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    if api_version(request) < APIVersion(1, 25):
        raise web.HTTPNotFound()  # prune endpoints arrived with 1.25
    filters = filters_value(request)
    query = adjust_request("VolumePrune", api_version(request),
                           {"filters": {k: list(v) for k, v in filters.values.items()}})
    filters = Filters.of(query["filters"])
    return json_response(render_prune(volumes(request).prune(filters)))


async def update(request: web.Request) -> web.Response:
    if api_version(request) < CLUSTER_VOLUMES:
        raise web.HTTPNotFound()  # the route does not exist before 1.42
    raise Unavailable("volume update only valid for cluster volumes, but swarm is unavailable")
