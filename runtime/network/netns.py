"""Running a function inside another network namespace without touching the event loop.

``setns(2)`` changes only the calling thread, so each call gets a fresh thread that
enters the namespace, runs the function and exits; a thread that left the host
namespace is never reused (a pooled thread would silently carry the container's
namespace into unrelated work). Sockets created there stay bound to that namespace
after the thread is gone, which is how the embedded DNS server listens on
127.0.0.11 inside each container.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import netns as _pyroute2_netns  # type: ignore[import-untyped]

T = TypeVar("T")

CLONE_NEWNET = 0x40000000


def enter_netns(fd: int) -> None:
    """setns(fd, CLONE_NEWNET) for the calling thread (pyroute2 wraps the syscall)."""
    _pyroute2_netns.setns(fd, flags=0)


async def run_in_netns(netns_path: str, fn: Callable[[], T],
                       before: Callable[[int], None] | None = None) -> T:
    """Run ``fn`` in a new thread that has joined the namespace at ``netns_path``
    (``/proc/<pid>/ns/net`` or a bind-mounted handle); returns its result or raises
    its exception in the caller. ``before(fd)`` runs first in the same thread, still in
    the host's namespace, with the namespace's fd (e.g. to create a veth into it), which
    saves a thread hop on the container start path."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def body() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if before is not None:
                    before(fd)
                enter_netns(fd)
            finally:
                os.close(fd)
            result = fn()
        except BaseException as exc:  # delivered to the awaiting coroutine
            loop.call_soon_threadsafe(deliver, False, exc)
            return
        loop.call_soon_threadsafe(deliver, True, result)

    thread = threading.Thread(target=body, name="netns-worker", daemon=True)
    thread.start()
    return await future


__all__ = ["enter_netns", "run_in_netns"]
