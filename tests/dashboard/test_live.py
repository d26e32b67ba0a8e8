"""The live views' websockets pass on the engine's own streams (fake engine)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.dashboard.conftest import FakeEngine, login

Client = TestClient[web.Request, web.Application]


async def test_logs_are_demultiplexed_per_stream(client: Client, fake_engine: FakeEngine) -> None:
    await login(client)
    async with client.ws_connect("/api/ws/containers/c1/logs?tail=10&timestamps=1") as ws:
        messages = [await ws.receive_json() for _ in range(3)]
    assert messages == [{"stream": "stdout", "text": "out line\n"}, {"stream": "stderr", "text": "err line\n"},
                        {"end": True}]
    assert ("GET", "/containers/c1/logs?follow=1&stdout=1&stderr=1&tail=10&timestamps=1") in fake_engine.calls


async def test_events_stream_through(client: Client) -> None:
    await login(client)
    async with client.ws_connect("/api/ws/events") as ws:
        event = await ws.receive_json()
    assert event["Type"] == "volume" and event["Actor"]["ID"] == "v1"


async def test_stats_samples_are_summarized(client: Client) -> None:
    await login(client)
    async with client.ws_connect("/api/ws/containers/c1/stats") as ws:
        sample = await ws.receive_json()
    assert sample["mem"] == 100 and sample["cpu"] == 0.0 and sample["read"] == "2026-01-01T00:00:00Z"


async def test_engine_error_reaches_the_browser(client: Client) -> None:
    await login(client)
    async with client.ws_connect("/api/ws/containers/missing/logs") as ws:
        message = await ws.receive_json()
    assert message == {"error": "page not found: /containers/missing/json"}


async def test_websockets_need_a_session(client: Client) -> None:
    resp = await client.get("/api/ws/events", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 401
