"""Bridges between the event loop and the worker threads that do blocking image work.

* :class:`BlockingReader` lets a worker thread ``read()`` an asyncio byte source (an
  aiohttp request body) by scheduling each read on the loop.
* :func:`iterate_in_thread` runs a blocking generator (a ``docker save`` stream) in a
  thread and yields its items on the loop, with back-pressure; closing the async iterator
  stops the generator.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")

_QUEUE_DEPTH = 8
_PUMP_CHUNK = 1 << 20


class AsyncReadable(Protocol):
    def read(self, n: int = -1) -> Awaitable[bytes]: ...


class BlockingReader:
    """``read(n)`` for worker threads over an async ``read(n)`` (never call on the loop).

    A task on the loop pumps the source into a bounded hand-off queue, so a read costs a
    queue get instead of a round trip through the loop. Create it on the loop; call
    :meth:`close` once the worker is done with it."""

    def __init__(self, source: AsyncReadable, loop: asyncio.AbstractEventLoop, depth: int = 16) -> None:
        self._source = source
        self._loop = loop
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue()
        self._slots = asyncio.Semaphore(depth)
        self._buf = b""
        self._eof = False
        self._task = loop.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                await self._slots.acquire()
                data = await self._source.read(_PUMP_CHUNK)
                self._queue.put(bytes(data))
                if not data:
                    return
        except asyncio.CancelledError:
            self._queue.put(EOFError("request body closed"))
            raise
        except BaseException as exc:  # handed to the reading thread
            self._queue.put(exc)

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            if self._eof:
                return b""
            item = self._queue.get()
            self._loop.call_soon_threadsafe(self._slots.release)
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._buf = item
        if n < 0 or n >= len(self._buf):
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        """Stop pumping (call on the loop)."""
        self._task.cancel()


class _Stop:
    pass


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run ``make()``'s iterator in a worker thread and yield its items here.

    Up to ``_QUEUE_DEPTH`` items are in flight: the worker hands each one to the loop with
    ``call_soon_threadsafe`` and goes on producing, instead of waiting for the loop to take
    it (a round trip per item), so producing and sending overlap."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()  # bounded by ``slots``
    slots = threading.Semaphore(_QUEUE_DEPTH)
    cancelled = threading.Event()

    def produce() -> None:
        it = make()
        try:
            for item in it:
                while not slots.acquire(timeout=0.1):
                    if cancelled.is_set():
                        return
                if cancelled.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, item)
            loop.call_soon_threadsafe(queue.put_nowait, _Stop())
        except BaseException as exc:  # delivered to the consumer, raised there
            if not cancelled.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            item = await queue.get()
            slots.release()
            if isinstance(item, _Stop):
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        cancelled.set()
        # the worker sees ``cancelled`` at its next item (or within 0.1 s while waiting)
        await asyncio.shield(_drain(queue, worker))


async def _drain(queue: asyncio.Queue[object], worker: asyncio.Future[None]) -> None:
    while not worker.done():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        await asyncio.sleep(0.01)
