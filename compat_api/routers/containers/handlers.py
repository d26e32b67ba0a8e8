"""Handlers of the container area: parse, call the container service once, render."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from compat_api.adjustments import adjust_request, adjust_response
from compat_api.wire.goshapes import NETWORKING_CONFIG, check_body
from compat_api.convert.containers import (
    config_from_wire, host_config_from_wire, render_config, render_create, render_inspect, render_summary,
    render_wait,
)
from compat_api.params import (
    api_version, bool_value, bool_value_or_default, filters_value, int_value, json_body,
)
from compat_api.render import dumps, json_response, no_content
from compat_api.routers.containers.backend import containers
from compat_api.routers.containers.streaming import pump
from compat_api.streams.hijack import MULTIPLEXED_STREAM, RAW_STREAM, hijack
from compat_api.streams.logframes import widen_send_buffer, write_log_batches
from compat_api.versions import APIVersion
from builder.changes import build_from_config
from runtime.containers.attach import AttachOptions
from runtime.containers.listing import ListOptions
from runtime.containers.service import CommitOptions, CreateRequest, LogsOptions
from runtime.containers.state import WaitCondition
from runtime.errors import InvalidParameter
from runtime.network.versioned import migrate_container_mac, with_legacy_aliases
from runtime.timefmt import parse_timestamp

_V1_44 = APIVersion(1, 44)
_V1_45 = APIVersion(1, 45)


def _stream_content_type(request: web.Request, tty: bool, operation: str) -> str:
    if tty:
        return RAW_STREAM
    headers = adjust_response(operation, api_version(request), {"Content-Type": MULTIPLEXED_STREAM})
    return str(headers["Content-Type"])


# --- create / inspect / list -------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    service = containers(request)
    version = api_version(request)
    body = await json_body(request)
    if not body:
        raise InvalidParameter("config cannot be empty in order to create a container")
    body = adjust_request("ContainerCreate", version, dict(body))
    config = config_from_wire({k: v for k, v in body.items()
                               if k not in ("HostConfig", "NetworkingConfig")})
    host = host_config_from_wire(body.get("HostConfig"))
    networking = body.get("NetworkingConfig") or {}
    check_body(networking, NETWORKING_CONFIG, holder="CreateRequest", path="NetworkingConfig")
    endpoints = networking.get("EndpointsConfig")
    # the one version check of the container-wide MacAddress rule (API < 1.44: migrated)
    mac = migrate_container_mac(config.mac_address, host.network_mode or "", endpoints or {},
                                legacy=version < _V1_44)
    config = replace(config, mac_address=mac.container_mac)
    result = await service.create(CreateRequest(config, host, request.query.get("name", ""),
                                                request.query.get("platform", ""),
                                                mac.endpoints))
    return json_response(render_create(result.id, (*mac.warnings, *result.warnings)), status=201)


async def inspect(request: web.Request) -> web.Response:
    view = containers(request).inspect(request.match_info["id"], bool_value(request, "size"))
    container = view.container
    version = api_version(request)
    settings = view.network_settings
    if settings is not None and version < _V1_45:  # the one version check of the alias rule
        settings = with_legacy_aliases(settings, container.id, container.config.hostname or container.id[:12])
    return json_response(render_inspect(container, version, network_settings=settings,
                                        size=view.size))


async def list_(request: web.Request) -> web.Response:
    version = api_version(request)
    limit = int_value(request, "limit", -1)
    options = ListOptions(all=bool_value(request, "all"), limit=limit,
                          size=bool_value(request, "size"), filters=filters_value(request))
    return json_response([
        render_summary(v.container, version, network_settings=v.network_settings, size=v.size,
                       link_names=list(v.link_names))
        for v in containers(request).list_containers(options)])


# --- lifecycle -----------------------------------------------------------------------------


def _stop_params(request: web.Request, operation: str) -> tuple[str | None, int | None]:
    query = adjust_request(operation, api_version(request), {"signal": request.query.get("signal", "")})
    signal = str(query.get("signal") or "") or None
    raw = request.query.get("t", "")
    timeout = None
    if raw != "":
        try:
            timeout = int(raw)
        except ValueError:
            raise InvalidParameter(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None
    return signal, timeout


async def start(request: web.Request) -> web.Response:
    body = await request.read()
    if body.strip() and body.strip() not in (b"{}", b"null"):
        raise InvalidParameter("starting container with non-empty request body was deprecated "
                               "since API v1.22 and removed in v1.24")
    await containers(request).start(request.match_info["id"])
    return no_content()


async def stop(request: web.Request) -> web.Response:
    signal, timeout = _stop_params(request, "ContainerStop")
    await containers(request).stop(request.match_info["id"], signal, timeout)
    return no_content()


async def restart(request: web.Request) -> web.Response:
    signal, timeout = _stop_params(request, "ContainerRestart")
    await containers(request).restart(request.match_info["id"], signal, timeout)
    return no_content()


async def kill(request: web.Request) -> web.Response:
    await containers(request).kill(request.match_info["id"], request.query.get("signal", ""))
    return no_content()


async def wait(request: web.Request) -> web.StreamResponse:
    legacy = api_version(request) < APIVersion(1, 30)  # no early headers
    query = adjust_request("ContainerWait", api_version(request), {"condition": request.query.get("condition", "")})
    condition = WaitCondition.parse(str(query.get("condition") or ""))
    future = containers(request).wait(request.match_info["id"], condition)
    if legacy:
        return json_response(render_wait(await future))
    # headers go out now: `docker run` waits for them before it calls /start
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    status = await future
    await response.write(dumps(render_wait(status)))
    await response.write_eof()
    return response


async def remove(request: web.Request) -> web.Response:
    await containers(request).remove(request.match_info["id"], force=bool_value(request, "force"),
                                     volumes=bool_value(request, "v"),
                                     link=bool_value(request, "link"))
    return no_content()


async def remove_link(request: web.Request) -> web.Response:
    """``DELETE /containers/<parent>/<alias>``: only meaningful with ``link=1``."""
    ref = f"{request.match_info['parent']}/{request.match_info['alias']}"
    await containers(request).remove(ref, force=bool_value(request, "force"),
                                     volumes=bool_value(request, "v"),
                                     link=bool_value(request, "link"))
    return no_content()


async def rename(request: web.Request) -> web.Response:
    await containers(request).rename(request.match_info["id"], request.query.get("name", ""))
    return no_content()


def _dimension(request: web.Request, key: str, what: str) -> int:
    raw = request.query.get(key, "")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f'invalid resize {what} "{raw}": strconv.ParseUint: parsing '
                               f'"{raw}": invalid syntax') from None
    if value < 0 or value > 0xFFFF_FFFF:
        raise InvalidParameter(f'invalid resize {what} "{raw}": value out of range')
    return value


async def resize(request: web.Request) -> web.Response:
    height = _dimension(request, "h", "height")
    width = _dimension(request, "w", "width")
    containers(request).resize(request.match_info["id"], height, width)
    return web.Response(status=200)


# --- logs / attach -------------------------------------------------------------------------


def _time_param(request: web.Request, key: str) -> int:
    raw = request.query.get(key, "")
    if raw == "":
        return 0
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise InvalidParameter(f"failed to parse value {raw} as time") from None


def _tail(request: web.Request) -> int | None:
    raw = request.query.get("tail", "all")
    try:
        value = int(raw)
    except ValueError:
        return None  # dockerd treats anything unparsable, including "all", as everything
    return value if value >= 0 else None


async def logs(request: web.Request) -> web.StreamResponse:
    options = LogsOptions(
        stdout=bool_value(request, "stdout"), stderr=bool_value(request, "stderr"),
        follow=bool_value(request, "follow"), since_ns=_time_param(request, "since"),
        until_ns=_time_param(request, "until"), timestamps=bool_value(request, "timestamps"),
        tail=_tail(request), details=bool_value(request, "details"),
    )
    stream = containers(request).logs(request.match_info["id"], options)
    multiplexed = not stream.tty
    response = web.StreamResponse(headers={"Content-Type": _stream_content_type(request, stream.tty, "ContainerLogs")})
    response.enable_chunked_encoding()
    await response.prepare(request)
    widen_send_buffer(request.transport)
    await write_log_batches(response, stream.batches, multiplexed, options.timestamps)
    await response.write_eof()
    return response


async def attach(request: web.Request) -> web.StreamResponse:
    options = AttachOptions(
        stream=bool_value(request, "stream"), logs=bool_value(request, "logs"),
        stdin=bool_value(request, "stdin"), stdout=bool_value(request, "stdout"),
        stderr=bool_value(request, "stderr"),
        detach_keys=request.query.get("detachKeys") or None,
    )
    attachment = containers(request).attach(request.match_info["id"], options)
    try:
        stream = await hijack(request, content_type=_stream_content_type(request, attachment.tty, "ContainerAttach"))
    except BaseException:
        attachment.close()
        raise
    await pump(stream, attachment, multiplexed=not attachment.tty)
    return stream.response


# --- commit --------------------------------------------------------------------------------


async def commit(request: web.Request) -> web.Response:
    service = containers(request)
    body = await json_body(request)
    config = config_from_wire(body) if body else None
    changes = request.query.getall("changes", [])
    ref = request.query.get("container", "")
    options = CommitOptions(
        repo=request.query.get("repo", ""), tag=request.query.get("tag", ""),
        comment=request.query.get("comment", ""), author=request.query.get("author", ""),
        config=config, pause=bool_value_or_default(request, "pause", True),
    )
    if options.tag and not options.repo:
        raise InvalidParameter("invalid reference format: repository name must be given with a tag")
    if changes:  # dockerd: the changes apply to the request's config, else the container's
        base = body if body else render_config(service.get(ref).config)
        options = replace(options, config=config_from_wire(build_from_config(base, changes)))
    image_id = await service.commit(ref, options)
    return json_response({"Id": image_id}, status=201)
