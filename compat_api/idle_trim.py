"""Trim the C heap once the API has been quiet for a moment.

Every request marks the time it ended; one timer at a time waits until ``delay`` seconds
have passed since the last such mark, then calls ``trim`` (``runtime.linux.heap.trim_heap``:
free heap pages back to the kernel, well under a millisecond). Requests still running,
such as ``docker events`` or ``logs -f`` followers, do not hold it back: trimming is safe
at any time, it only costs time when it follows every request, hence the delay. The
middleware's own cost per request is one clock read and, at most, one timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["IdleTrim"]

DEFAULT_DELAY = 1.0


class IdleTrim:
    def __init__(self, trim: Callable[[], object], delay: float = DEFAULT_DELAY) -> None:
        self._trim = trim
        self._delay = delay
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def mark(self) -> None:
        """Work was done now: trim ``delay`` seconds after the last mark."""
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._last + self._delay, self._due)

    def _due(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last + self._delay - loop.time()
        if wait > 0:
            self._timer = loop.call_later(wait, self._due)
            return
        self._timer = None
        self._trim()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            self.mark()
