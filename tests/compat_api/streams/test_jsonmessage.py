from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from compat_api.streams.jsonmessage import (
    JsonMessageWriter,
    encode_message,
    human_size,
    render_progress,
)
from runtime.errors import ImageNotFound

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (37786, "37.79kB"),
        (3642247, "3.642MB"),
        (1234567890, "1.235GB"),
        (999_999, "1000kB"),  # go-units rounds within the unit, it does not carry over
        (10**27, "1000YB"),
    ],
)
def test_human_size_matches_go_units(size: int, text: str) -> None:
    assert human_size(size) == text


def test_render_progress_like_dockerd() -> None:
    assert render_progress(37786, 3642247) == "[>" + " " * 50 + "]  37.79kB/3.642MB"
    assert render_progress(3642247, 3642247) == "[" + "=" * 50 + ">]  3.642MB/3.642MB"
    # 49.99% -> 24 of 50 (Go truncates the percentage, then halves it).
    assert render_progress(1821000, 3642247) == "[" + "=" * 24 + ">" + " " * 26 + "]  1.821MB/3.642MB"
    assert render_progress(1821124, 3642247).startswith("[" + "=" * 25 + ">" + " " * 25 + "] ")


def test_render_progress_edge_cases() -> None:
    assert render_progress(0, 0) == ""
    assert render_progress(1500) == "   1.5kB"  # no total: just the count, right-aligned to 8
    assert render_progress(5, units="layers") == "5 layers"
    assert render_progress(3, 7, units="layers").endswith("] 3/7 layers")
    assert render_progress(9, 7, units="layers").endswith("] 9 layers")
    # A wonky current > total: the bar stays full and the total is dropped.
    assert render_progress(5000, 1000) == "[" + "=" * 50 + ">]      5kB"
    assert render_progress(10, 100, hide_counts=True) == "[=====>" + " " * 45 + "] "


def test_encode_message_order_escaping_and_crlf() -> None:
    line = encode_message({"id": "abc", "progress": "[>  ]", "status": "Downloading", "progressDetail": {"total": 2, "current": 1}})
    assert line == (
        b'{"status":"Downloading","progressDetail":{"current":1,"total":2},'
        b'"progress":"[\\u003e  ]","id":"abc"}\r\n'
    )
    assert json.loads(line) == {"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "progress": "[>  ]", "id": "abc"}
    assert encode_message({"stream": "caf\u00e9 & co\n"}) == '{"stream":"caf\u00e9 \\u0026 co\\n"}\r\n'.encode()


def test_encode_message_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="Status"):
        encode_message({"Status": "x"})  # type: ignore[typeddict-unknown-key]


def lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\r\n")
    return [json.loads(line) for line in body.split(b"\r\n")[:-1]]


async def test_pull_like_stream_then_in_band_error(aiohttp_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        writer = await JsonMessageWriter.start(request)
        async with writer.reporting_errors():
            await writer.status("Pulling from library/alpine", id="latest")
            await writer.progress("Pulling fs layer", id="f18232174bc9")
            await writer.progress("Downloading", id="f18232174bc9", current=37786, total=3642247)
            raise ImageNotFound("alpine:nope")
        assert writer.failed
        return await writer.finish()

    app = web.Application()
    app.router.add_post("/images/create", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/images/create")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Transfer-Encoding"] == "chunked"  # docker-py streams only chunked bodies
    assert lines(await resp.read()) == [
        {"status": "Pulling from library/alpine", "id": "latest"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "f18232174bc9"},
        {
            "status": "Downloading",
            "progressDetail": {"current": 37786, "total": 3642247},
            "progress": "[>" + " " * 50 + "]  37.79kB/3.642MB",
            "id": "f18232174bc9",
        },
        {"errorDetail": {"message": "No such image: alpine:nope"}, "error": "No such image: alpine:nope"},
    ]


async def test_build_like_stream(aiohttp_client: ClientFactory) -> None:
    image_id = "sha256:" + "ab" * 32

    async def handler(request: web.Request) -> web.StreamResponse:
        writer = await JsonMessageWriter.start(request)
        async with writer.reporting_errors():
            await writer.stream("Step 1/1 : FROM scratch\n")
            await writer.aux({"ID": image_id})
            await writer.stream(f"Successfully built {image_id[7:19]}\n")
        assert not writer.failed
        return await writer.finish()

    app = web.Application()
    app.router.add_post("/build", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/build")
    body = await resp.read()
    assert body.startswith(b'{"stream":"Step 1/1 : FROM scratch\\n"}\r\n')
    assert lines(body) == [
        {"stream": "Step 1/1 : FROM scratch\n"},
        {"aux": {"ID": image_id}},
        {"stream": "Successfully built abababababab\n"},
    ]


async def test_headers_are_flushed_before_the_first_message(aiohttp_client: ClientFactory) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        writer = await JsonMessageWriter.start(request)
        await release.wait()
        await writer.status("done")
        return await writer.finish()

    app = web.Application()
    app.router.add_post("/images/load", handler)
    client = await aiohttp_client(app)
    # The response (status + headers) arrives while the handler is still blocked.
    resp = await asyncio.wait_for(client.post("/images/load"), 5)
    assert resp.status == 200
    release.set()
    assert lines(await resp.read()) == [{"status": "done"}]


async def test_error_with_code_and_unexpected_exception(aiohttp_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        writer = await JsonMessageWriter.start(request)
        await writer.error("denied", code=1)
        async with writer.reporting_errors():
            raise KeyError("boom")
        return await writer.finish()

    app = web.Application()
    app.router.add_post("/x", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/x")
    assert lines(await resp.read()) == [
        {"errorDetail": {"code": 1, "message": "denied"}, "error": "denied"},
        {"errorDetail": {"message": "'boom'"}, "error": "'boom'"},
    ]


async def test_docker_py_decodes_the_stream() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.query["fromImage"] == "alpine"
        writer = await JsonMessageWriter.start(request)
        async with writer.reporting_errors():
            await writer.status("Pulling from library/alpine", id="latest")
            await writer.progress("Downloading", id="f18232174bc9", current=1, total=2)
            raise ImageNotFound("alpine:latest")
        return await writer.finish()

    app = web.Application()
    app.router.add_post("/v1.44/images/create", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    directory = tempfile.mkdtemp(prefix="jm", dir="/tmp")
    path = f"{directory}/s.sock"
    await web.UnixSite(runner, path).start()

    def pull() -> list[dict[str, Any]]:
        with docker.APIClient(base_url=f"unix://{path}", version="1.44", timeout=10) as api:
            return list(api.pull("alpine", tag="latest", stream=True, decode=True))

    try:
        messages = await asyncio.to_thread(pull)
    finally:
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    assert [m.get("status") or m.get("error") for m in messages] == [
        "Pulling from library/alpine",
        "Downloading",
        "No such image: alpine:latest",
    ]
