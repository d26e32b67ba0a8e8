"""Bridges between the event loop and the worker threads that do blocking image work.

* :class:`BlockingReader` lets a worker thread ``read()`` an asyncio byte source (an
  aiohttp request body) by scheduling each read on the loop.
* :func:`iterate_in_thread` runs a blocking generator (a ``docker save`` stream) in a
  thread and yields its items on the loop, with back-pressure; closing the async iterator
  stops the generator.
* :class:`LoopCallback` turns a callback made in a thread into a call on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

_QUEUE_DEPTH = 8


class AsyncReadable(Protocol):
    def read(self, n: int = -1) -> Awaitable[bytes]: ...


class BlockingReader:
    """``read(n)`` for worker threads over an async ``read(n)`` (never call on the loop)."""

    def __init__(self, source: AsyncReadable, loop: asyncio.AbstractEventLoop) -> None:
        self._source = source
        self._loop = loop

    def read(self, n: int = -1) -> bytes:
        async def _read() -> bytes:
            return await self._source.read(n)

        return asyncio.run_coroutine_threadsafe(_read(), self._loop).result()


class LoopCallback(Generic[T]):
    """A thread-safe callable that delivers its argument to ``fn`` on the loop."""

    def __init__(self, fn: Callable[[T], object], loop: asyncio.AbstractEventLoop) -> None:
        self._fn = fn
        self._loop = loop

    def __call__(self, item: T) -> None:
        self._loop.call_soon_threadsafe(self._fn, item)


class _Stop:
    pass


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run ``make()``'s iterator in a worker thread and yield its items here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_DEPTH)
    cancelled = threading.Event()

    def produce() -> None:
        it = make()
        try:
            for item in it:
                if cancelled.is_set():
                    break
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(_Stop()), loop).result()
        except BaseException as exc:  # delivered to the consumer, raised there
            if not cancelled.is_set():
                asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Stop):
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()
        # unblock a producer waiting on a full queue
        while not queue.empty():
            queue.get_nowait()
        if not worker.done():
            try:
                queue.put_nowait(_Stop())
            except asyncio.QueueFull:
                pass
            await asyncio.shield(_drain(queue, worker))


async def _drain(queue: asyncio.Queue[object], worker: asyncio.Future[None]) -> None:
    while not worker.done():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        await asyncio.sleep(0.01)
