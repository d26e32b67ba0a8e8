"""Websockets for the live views: each streams one of the engine's own streaming endpoints.

events -> ``GET /events``; logs -> ``GET /containers/{id}/logs?follow=1``; stats ->
``GET /containers/{id}/stats`` (one sample a second, the engine's pace); terminal -> an exec
with a TTY whose hijacked connection is bridged to the browser (input, resize). Nothing polls.
A browser that goes away just ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiohttp
from aiohttp import web

from dashboard.api import summarize_stats
from dashboard.appkeys import ENGINE, SESSIONS
from dashboard.engine import EngineError, demux
from dashboard.security import api_error, check_ws_csrf

log = logging.getLogger("pydockerd.dashboard")
routes = web.RouteTableDef()
_CLOSED = (ConnectionResetError, aiohttp.ClientConnectionError, asyncio.IncompleteReadError, BrokenPipeError)


async def _open(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Returns when the browser closes the socket (its messages are not needed here)."""
    async for _ in ws:
        pass


async def _pump(ws: web.WebSocketResponse, producer: asyncio.Task[None]) -> None:
    """Run ``producer`` until it ends or the browser leaves, whichever comes first."""
    reader = asyncio.ensure_future(_until_closed(ws))
    try:
        await asyncio.wait({producer, reader}, return_when=asyncio.FIRST_COMPLETED)
        if producer.done() and not producer.cancelled():
            exc = producer.exception()
            if isinstance(exc, EngineError):
                with contextlib.suppress(*_CLOSED):
                    await ws.send_json({"error": exc.message})
            elif exc is not None and not isinstance(exc, _CLOSED):
                log.warning("live stream ended: %r", exc)
    finally:
        for task in (producer, reader):
            task.cancel()
        await asyncio.gather(producer, reader, return_exceptions=True)
        await ws.close()


@routes.get("/api/ws/events")
async def events(request: web.Request) -> web.WebSocketResponse:
    """The engine's events, from ``since`` (unix seconds) if given, then live."""
    since = request.query.get("since", "")
    params = {"since": since} if since.isdigit() else {}
    ws = await _open(request)

    async def produce() -> None:
        async with request.app[ENGINE].stream("GET", "/events", params) as resp:
            async for line in resp.content:
                if line.strip():
                    await ws.send_str(line.decode(errors="replace").strip())

    await _pump(ws, asyncio.ensure_future(produce()))
    return ws


@routes.get("/api/ws/containers/{id}/logs")
async def logs(request: web.Request) -> web.WebSocketResponse:
    """Each message: ``{"stream": "stdout"|"stderr", "text": ...}``."""
    cid = request.match_info["id"]
    engine = request.app[ENGINE]
    tail = request.query.get("tail", "200")
    params = {"follow": "1", "stdout": "1", "stderr": "1", "tail": tail if tail.isdigit() else "all",
              "timestamps": "1" if request.query.get("timestamps") == "1" else "0"}
    ws = await _open(request)

    async def produce() -> None:
        inspect = await engine.json("GET", f"/containers/{cid}/json")
        tty = bool(inspect.get("Config", {}).get("Tty")) if isinstance(inspect, dict) else False
        async with engine.stream("GET", f"/containers/{cid}/logs", params) as resp:
            async for stream, data in demux(resp, tty):
                await ws.send_json({"stream": stream, "text": data.decode(errors="replace")})
        await ws.send_json({"end": True})

    await _pump(ws, asyncio.ensure_future(produce()))
    return ws


@routes.get("/api/ws/containers/{id}/stats")
async def stats(request: web.Request) -> web.WebSocketResponse:
    """Each message: one summarized sample (see ``summarize_stats``) with its ``read`` time."""
    cid = request.match_info["id"]
    ws = await _open(request)

    async def produce() -> None:
        async with request.app[ENGINE].stream("GET", f"/containers/{cid}/stats", {"stream": "1"}) as resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                sample = json.loads(line)
                await ws.send_json({**summarize_stats(sample), "read": sample.get("read", "")})

    await _pump(ws, asyncio.ensure_future(produce()))
    return ws


@routes.get("/api/ws/containers/{id}/exec")
async def terminal(request: web.Request) -> web.StreamResponse:
    """An interactive shell: ``docker exec -it ID sh``. Browser -> engine: text messages
    ``{"input": "..."}`` or ``{"resize": [cols, rows]}``; engine -> browser: binary output."""
    if not check_ws_csrf(request, request.app[SESSIONS]):
        return api_error(403, "missing or wrong CSRF token")
    cid = request.match_info["id"]
    engine = request.app[ENGINE]
    cmd = request.query.get("cmd", "sh")
    ws = await _open(request)
    try:
        created = await engine.json("POST", f"/containers/{cid}/exec", body={
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": True,
            "Cmd": [cmd], "Env": ["TERM=xterm-256color"]})
        exec_id = str(created["Id"]) if isinstance(created, dict) else ""
        reader, writer = await engine.hijack(f"/exec/{exec_id}/start", {"Detach": False, "Tty": True})
    except EngineError as exc:
        await ws.send_json({"error": exc.message})
        await ws.close()
        return ws

    size: list[int] = []  # the browser's last size, applied once the process runs
    started = asyncio.Event()

    async def resize() -> None:
        if size and started.is_set():
            with contextlib.suppress(EngineError):
                await engine.json("POST", f"/exec/{exec_id}/resize", {"h": str(size[1]), "w": str(size[0])})

    async def output() -> None:
        while data := await reader.read(65536):
            if not started.is_set():  # the first output: the process runs, it can be resized
                started.set()
                await resize()
            await ws.send_bytes(data)
        await ws.close()  # the shell exited: ends the loop below

    out_task = asyncio.ensure_future(output())
    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if isinstance(data.get("input"), str):
                writer.write(data["input"].encode())
                await writer.drain()
            elif isinstance(data.get("resize"), list) and len(data["resize"]) == 2:
                size[:] = [int(data["resize"][0]), int(data["resize"][1])]
                await resize()
            if out_task.done():
                break
    except _CLOSED:
        pass
    finally:
        out_task.cancel()
        await asyncio.gather(out_task, return_exceptions=True)
        writer.close()
        with contextlib.suppress(*_CLOSED, OSError):
            await writer.wait_closed()
        await ws.close()
    return ws
