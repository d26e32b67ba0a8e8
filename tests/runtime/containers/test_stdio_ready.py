"""Subscription.ready: what is queued, at once, without passing the end marker."""

from __future__ import annotations

from runtime.containers.stdio import Subscription
from runtime.logs.driver import LogMessage


class _Owner:
    def _unsubscribe(self, sub: object) -> None:
        pass


async def test_ready_takes_queued_items_and_keeps_the_end() -> None:
    sub: Subscription[LogMessage] = Subscription(_Owner(), frozenset({"stdout"}))  # type: ignore[arg-type]
    lines = [LogMessage("stdout", f"{i}\n".encode(), i) for i in range(5)]
    for m in lines:
        sub._offer(m, len(m.line))
    sub._end()
    first = await sub.get()
    assert [first, *sub.ready(limit=2)] == lines[:3]
    assert sub.ready() == lines[3:]
    assert sub.ready() == []
    assert [m async for m in sub] == []          # the end marker is still there
    assert sub._backlog == 0
