"""Client hang-ups are quiet; an unexpected error is logged once, with its request line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.routers import Route
from runtime.engine import Engine

GONE = asyncio.Event()


async def _hang_up_then_write(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"first\n")
    await GONE.wait()
    for _ in range(50):  # the closed transport makes a write fail sooner or later
        await response.write(b"more\n")
        await asyncio.sleep(0.01)
    return response


async def _fail_streaming(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"first\n")
    raise RuntimeError("bug while streaming")


async def _fail(request: web.Request) -> web.Response:
    raise RuntimeError("bug before answering")


ROUTES = [
    Route("GET", "/hangup", _hang_up_then_write),
    Route("GET", "/streambug", _fail_streaming),
    Route("GET", "/bug", _fail),
]


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine) -> TestClient:
    return await aiohttp_client(create_app(engine, ROUTES))


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_that_hangs_up_is_not_an_error(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    GONE.clear()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /hangup HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"first" in await reader.readuntil(b"first\n")
    writer.close()  # the client goes away mid-stream
    await writer.wait_closed()
    GONE.set()
    for _ in range(100):
        if any("client disconnected" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
    assert _errors(caplog) == []


async def test_an_unexpected_error_is_logged_once_with_its_request(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    resp = await client.get("/bug?x=1")
    assert resp.status == 500
    assert (await resp.json())["message"] == "bug before answering"
    [record] = _errors(caplog)
    assert "GET /bug?x=1" in record.getMessage() and record.exc_info is not None


async def test_an_error_while_streaming_breaks_the_stream_and_is_logged_once(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    resp = await client.get("/streambug")
    assert resp.status == 200
    with pytest.raises(Exception):
        await resp.read()  # no clean end of the chunked body
    await asyncio.sleep(0.05)
    [record] = _errors(caplog)
    assert "GET /streambug" in record.getMessage()
