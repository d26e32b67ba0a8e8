"""The heap is trimmed once after a burst of requests, not after each one."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from compat_api.idle_trim import IdleTrim
from runtime.linux.heap import trim_heap


async def test_one_trim_after_a_burst() -> None:
    calls: list[int] = []
    idle = IdleTrim(lambda: calls.append(1), delay=0.02)
    for _ in range(20):
        idle.mark()
    while not calls:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert calls == [1]
    idle.mark()
    while len(calls) < 2:
        await asyncio.sleep(0.01)
    assert calls == [1, 1]


async def test_each_request_marks() -> None:
    calls: list[int] = []
    idle = IdleTrim(lambda: calls.append(1), delay=0.01)

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[idle.middleware])
    app.router.add_get("/", ok)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/")).status == 200
        while not calls:
            await asyncio.sleep(0.01)
    idle.close()


async def test_close_cancels_a_pending_trim() -> None:
    calls: list[int] = []
    idle = IdleTrim(lambda: calls.append(1), delay=0.01)
    idle.mark()
    idle.close()
    await asyncio.sleep(0.05)
    assert calls == []


def test_trim_heap_runs_on_glibc() -> None:
    assert trim_heap() in (True, False)
