"""A fake engine on a unix socket, and the dashboard app in front of it (aiohttp test client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dashboard.app import create_app

TOKEN = "test-token-0123456789"


@dataclass
class FakeEngine:
    """Answers a few Engine API calls and records every request it gets."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    host: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((request.method, request.path_qs))
        path = request.path
        if path == "/containers/json":
            return web.json_response([{"Id": "c1", "Names": ["/web"], "State": "running", "Status": "Up"}])
        if path == "/containers/missing/stop":
            return web.json_response({"message": "No such container: missing"}, status=404)
        if path.startswith("/containers/") and path.endswith(("/stop", "/start", "/kill")):
            return web.Response(status=204)
        if path == "/containers/create":
            body = await request.json()
            if body["Image"] == "remote/app" and ("POST", "/images/create?fromImage=remote/app&tag=latest") not in self.calls:
                return web.json_response({"message": "No such image: remote/app:latest"}, status=404)
            return web.json_response({"Id": "new1", "Warnings": [], "Echo": body}, status=201)
        if path == "/containers/c1/json":
            return web.json_response({"Id": "c1", "Config": {"Tty": False}})
        if path == "/containers/c1/logs":
            resp = web.StreamResponse()
            await resp.prepare(request)
            for stream, text in ((1, b"out line\n"), (2, b"err line\n")):
                await resp.write(bytes([stream, 0, 0, 0]) + len(text).to_bytes(4, "big") + text)
            await resp.write_eof()
            return resp
        if path == "/events":
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(json.dumps({"Type": "volume", "Action": "create", "Actor": {"ID": "v1"}}).encode() + b"\n")
            await resp.write_eof()
            return resp
        if path == "/containers/c1/stats":
            resp = web.StreamResponse()
            await resp.prepare(request)
            sample = {"read": "2026-01-01T00:00:00Z", "memory_stats": {"usage": 100}}
            await resp.write(json.dumps(sample).encode() + b"\n")
            await resp.write_eof()
            return resp
        if path == "/images/create":
            resp = web.StreamResponse()
            await resp.prepare(request)
            for status in ("Pulling fs layer", "Downloading", "Pull complete"):
                await resp.write(json.dumps({"id": "abc", "status": status}).encode() + b"\r\n")
            await resp.write_eof()
            return resp
        return web.json_response({"message": f"page not found: {path}"}, status=404)


@pytest.fixture
async def fake_engine(tmp_path: Path) -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    sock = tmp_path / "engine.sock"
    await web.UnixSite(runner, str(sock)).start()
    fake.host = f"unix://{sock}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def client(fake_engine: FakeEngine) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_app(fake_engine.host, TOKEN)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def login(client: TestClient[web.Request, web.Application]) -> str:
    """Log the client in (cookie jar); returns the session's CSRF token."""
    resp = await client.post("/api/login", json={"token": TOKEN})
    assert resp.status == 200
    return str((await resp.json())["csrf"])
