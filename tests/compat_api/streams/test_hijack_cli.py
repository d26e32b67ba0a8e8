"""The real docker CLI against a minimal fake daemon: `echo x | docker exec -i c cat`."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from aiohttp import web

from compat_api.streams.hijack import MULTIPLEXED_STREAM, RAW_STREAM, hijack
from compat_api.streams.stdcopy import StreamType, encode_frame

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
V = "/v1.50"
SEEN = web.AppKey("seen", dict)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers={"Api-Version": "1.50", "Ostype": "linux"})


async def container_inspect(request: web.Request) -> web.Response:
    return web.json_response({"Id": "c" * 64, "State": {"Running": True}, "Config": {"Tty": False}})


async def exec_create(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[SEEN]["exec_config"] = body
    return web.json_response({"Id": "e" * 64}, status=201)


async def exec_start(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tty = bool(body.get("Tty"))
    stream = await hijack(request, content_type=RAW_STREAM if tty else MULTIPLEXED_STREAM)
    # `cat`: copy stdin to stdout until the client's half-close, then end the stream.
    while chunk := await stream.read():
        await stream.send(chunk if tty else encode_frame(StreamType.STDOUT, chunk))
    await stream.send(b"" if tty else encode_frame(StreamType.STDERR, b"cat: done\n"))
    stream.close_write()
    return stream.response


async def exec_inspect(request: web.Request) -> web.Response:
    return web.json_response({"ID": "e" * 64, "Running": False, "ExitCode": 0, "ContainerID": "c" * 64})


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def test_cli_exec_with_piped_stdin_does_not_hang() -> None:
    assert DOCKER is not None
    directory = tempfile.mkdtemp(prefix="hc", dir="/tmp")
    path = str(Path(directory) / "d.sock")
    app = web.Application()
    app[SEEN] = {}
    app.router.add_route("GET", "/_ping", ping)
    app.router.add_route("HEAD", "/_ping", ping)
    app.router.add_get(V + "/containers/{id}/json", container_inspect)
    app.router.add_post(V + "/containers/{id}/exec", exec_create)
    app.router.add_post(V + "/exec/{id}/start", exec_start)
    app.router.add_post(V + "/exec/{id}/resize", ok)
    app.router.add_get(V + "/exec/{id}/json", exec_inspect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, path).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": directory,
        "DOCKER_CONFIG": directory,
        "DOCKER_HOST": f"unix://{path}",
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            DOCKER, "exec", "-i", "c", "cat",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(b"hello-stdin\n"), 20)
    finally:
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    assert (proc.returncode, out, err) == (0, b"hello-stdin\n", b"cat: done\n")
    assert app[SEEN]["exec_config"]["AttachStdin"] is True
