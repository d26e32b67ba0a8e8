"""Handlers of the exec area."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from compat_api.adjustments import adjust_request
from compat_api.wire.goshapes import EXEC_START, check_body
from compat_api.convert.containers import exec_config_from_wire, render_exec_inspect
from compat_api.middleware import common_headers
from compat_api.params import api_version, json_body
from compat_api.render import json_response
from compat_api.routers.containers.backend import execs
from compat_api.routers.containers.handlers import _dimension, _stream_content_type
from compat_api.routers.containers.streaming import frame, pump
from compat_api.streams.hijack import hijack
from runtime.containers.execs import NotRunning
from runtime.errors import Conflict, InvalidParameter
from runtime.process.contract import StartFailed


# how long a finished exec stream waits for the process's exit report
EXIT_GRACE = 10.0


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    config = exec_config_from_wire(adjust_request("ContainerExec", api_version(request), dict(body)))
    exec_id = execs(request).create(request.match_info["id"], config)
    return json_response({"Id": exec_id}, status=201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(render_exec_inspect(execs(request).get(request.match_info["id"])))


async def resize(request: web.Request) -> web.Response:
    height = _dimension(request, "h", "height")
    width = _dimension(request, "w", "width")
    await execs(request).resize(request.match_info["id"], height, width)
    return web.Response(status=200)


def _exec_error(exc: StartFailed) -> str:
    return f"OCI runtime exec failed: exec failed: unable to start container process: {exc.text}: unknown"


async def start(request: web.Request) -> web.StreamResponse:
    service = execs(request)
    body = await json_body(request)
    check_body(body, EXEC_START)
    detach = body.get("Detach") is True
    tty = body.get("Tty") is True
    body = adjust_request("ExecStart", api_version(request), dict(body))
    size = body.get("ConsoleSize")
    console = (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else None
    exec_id = request.match_info["id"]
    record = service.get(exec_id)
    if record.started:
        raise Conflict(f"Error: Exec command {exec_id} is already running" if record.running
                       else f"Error: Exec command {exec_id} has already run")
    if not record.container.state.running:
        raise NotRunning(record.container.id)
    if detach:
        try:
            await service.start(exec_id, detach=True, console_size=console)
        except StartFailed as exc:
            raise InvalidParameter(_exec_error(exc)) from exc
        return web.Response(status=200)
    multiplexed = not tty
    stream = await hijack(request, content_type=_stream_content_type(request, tty, "ExecStart"),
                          extra_headers=common_headers(request))
    try:
        attachment = await service.start(exec_id, tty=tty, console_size=console)
    except StartFailed as exc:
        stream.write(frame("stdout", (_exec_error(exc) + "\r\n").encode(), multiplexed))
        await stream.flush()
        return stream.response
    if attachment is not None:
        await pump(stream, attachment, multiplexed)
        if not attachment.detached.is_set() and not stream.is_closing:
            # like dockerd, end the session only once the exit code is recorded: the CLI
            # reads it with GET /exec/{id}/json as soon as the stream closes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.done.wait(), EXIT_GRACE)
    return stream.response
