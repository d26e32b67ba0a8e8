"""One stdio fan-out per container process (main process or exec).

The daemon owns the daemon-side fds of a ``StartedProcess``: the stdout/stderr read ends
(or the pty master) are read without blocking from the event loop, and every chunk goes to
the log driver (split into lines, like dockerd's copier) and to every subscriber: attach
clients get raw chunks, ``logs --follow`` gets lines. Subscribers are queues; one that
falls too far behind is cut off instead of slowing the container down. stdin is written
without blocking either, and closed on request (``StdinOnce``).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import termios
import time
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from runtime.logs.driver import LogDriver, LogMessage
from runtime.process.contract import StartedProcess

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
MAX_LINE = 16 * 1024            # dockerd's copier splits longer lines into partial messages
MAX_BACKLOG = 64 * 1024 * 1024  # bytes a subscriber may lag behind before being dropped
DRAIN_TIMEOUT = 2.0             # wait for output EOF after the process exited

T = TypeVar("T")


class Subscription(Generic[T]):
    """A bounded-by-bytes queue of items; ``None`` marks the end of the stream."""

    def __init__(self, owner: StdioFanout, streams: frozenset[str]) -> None:
        self._owner = owner
        self.streams = streams
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._backlog = 0
        self.ended = False

    def _offer(self, item: T, size: int) -> None:
        if self.ended:
            return
        self._backlog += size
        if self._backlog > MAX_BACKLOG:
            log.warning("dropping a stdio subscriber that fell %d bytes behind", self._backlog)
            self._end()
            return
        self._queue.put_nowait(item)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def get(self) -> T | None:
        item = await self._queue.get()
        if item is not None:
            self._backlog -= _size(item)
        return item

    def ready(self, limit: int = 4096) -> list[T]:
        """Items already queued (up to ``limit``), without waiting: a busy stream's lines
        go out in one write instead of one each. The end marker stays queued."""
        items: list[T] = []
        while len(items) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)   # nothing is queued after the end
                break
            self._backlog -= _size(item)
            items.append(item)
        return items

    def close(self) -> None:
        self._owner._unsubscribe(self)
        self._end()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item


def _size(item: object) -> int:
    if isinstance(item, LogMessage):
        return len(item.line)
    if isinstance(item, tuple):
        return len(item[1])
    return 0


Chunk = tuple[str, bytes]


class StdioFanout:
    """Reads a process's output and distributes it; writes its stdin."""

    def __init__(self, process: StartedProcess, log_driver: LogDriver | None = None) -> None:
        self.process = process
        self.tty = process.tty
        self._driver = log_driver
        self._loop = asyncio.get_running_loop()
        self._readers: dict[int, str] = {}
        if process.stdout is not None:
            self._readers[process.stdout] = "stdout"
        if process.stderr is not None and process.stderr != process.stdout:
            self._readers[process.stderr] = "stderr"
        self._stdin: int | None = process.stdin
        self._stdin_shared = process.stdin is not None and process.stdin == process.stdout
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self._chunk_subs: set[Subscription[Chunk]] = set()
        self._line_subs: set[Subscription[LogMessage]] = set()
        self._stdin_lock = asyncio.Lock()
        self._eof = asyncio.Event()
        self.closed = False
        for fd in self._readers:
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._on_readable, fd)
        if self._stdin is not None and not self._stdin_shared:
            os.set_blocking(self._stdin, False)
        if not self._readers:
            self._eof.set()

    # output --------------------------------------------------------------------------

    def _on_readable(self, fd: int) -> bool:
        """Read once from ``fd``; True if output was taken in."""
        stream = self._readers.get(fd)
        if stream is None:
            return False
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the pty's last slave closed
                log.warning("reading %s of %d: %s", stream, self.process.pid, exc)
            data = b""
        if not data:
            self._finish_reader(fd)
            return False
        self._dispatch(stream, data)
        return True

    def read_pending(self, limit: int = 16) -> None:
        """Take in output the process already wrote but the event loop has not read yet, so
        that reading the log right now sees it (``logs`` right after ``start``, as docker-py's
        tests do). At most ``limit`` reads per stream: a chatty process must not stall us."""
        for fd in list(self._readers):
            for _ in range(limit):
                if not self._on_readable(fd):
                    break

    def _finish_reader(self, fd: int) -> None:
        stream = self._readers.pop(fd, None)
        self._loop.remove_reader(fd)
        if stream is not None and self._partial[stream]:
            self._log(stream, self._partial[stream], time.time_ns())
            self._partial[stream] = b""
        if not self._readers:
            self._eof.set()
            for sub in self._all_subscriptions():
                sub._end()

    def _dispatch(self, stream: str, data: bytes) -> None:
        now = time.time_ns()
        for sub in list(self._chunk_subs):
            if stream in sub.streams:
                sub._offer((stream, data), len(data))
        buffered = self._partial[stream] + data
        lines = buffered.split(b"\n")
        rest = lines.pop()
        complete = [line + b"\n" for line in lines]
        if any(len(line) > MAX_LINE for line in complete):  # long lines become partials
            complete = [piece for line in complete for piece in _pieces(line)]
        while len(rest) >= MAX_LINE:
            complete.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest
        if complete:
            self._log_lines(stream, complete, now)

    def _log(self, stream: str, line: bytes, now: int) -> None:
        self._log_lines(stream, [line], now)

    def _log_lines(self, stream: str, lines: list[bytes], now: int) -> None:
        if self._driver is not None:
            try:
                self._driver.log_lines(stream, lines, now)
            except OSError as exc:
                log.warning("log driver failed for %d: %s", self.process.pid, exc)
        for sub in list(self._line_subs):
            if stream in sub.streams:
                for line in lines:
                    sub._offer(LogMessage(stream, line, now), len(line))

    # subscriptions -------------------------------------------------------------------

    def subscribe(self, stdout: bool = True, stderr: bool = True) -> Subscription[Chunk]:
        """Raw output chunks as they are read (for attach). Ends at EOF."""
        sub: Subscription[Chunk] = Subscription(self, _streams(stdout, stderr))
        if self._eof.is_set():
            sub._end()
        else:
            self._chunk_subs.add(sub)
        return sub

    def subscribe_lines(self, stdout: bool = True, stderr: bool = True) -> Subscription[LogMessage]:
        """Complete lines as they are logged (for ``logs --follow``). Ends at EOF."""
        sub: Subscription[LogMessage] = Subscription(self, _streams(stdout, stderr))
        if self._eof.is_set():
            sub._end()
        else:
            self._line_subs.add(sub)
        return sub

    def _all_subscriptions(self) -> list[Subscription[Any]]:
        return [*self._chunk_subs, *self._line_subs]

    def _unsubscribe(self, sub: Subscription[Any]) -> None:
        self._chunk_subs.discard(sub)
        self._line_subs.discard(sub)

    # stdin ---------------------------------------------------------------------------

    @property
    def has_stdin(self) -> bool:
        return self._stdin is not None

    async def write_stdin(self, data: bytes) -> None:
        """Write all of ``data`` to the process's stdin (waits for pipe space, never blocks
        the loop). Raises BrokenPipeError once the process stopped reading."""
        async with self._stdin_lock:
            view = memoryview(data)
            while view:
                fd = self._stdin
                if fd is None:
                    raise BrokenPipeError(errno.EPIPE, "stdin is closed")
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    await self._writable(fd)
                    continue
                view = view[written:]

    async def _writable(self, fd: int) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()
        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self._loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            self._loop.remove_writer(fd)

    def close_stdin(self) -> None:
        """Deliver EOF to the process (a pty's stdin is its master; it stays open)."""
        if self._stdin is None or self._stdin_shared:
            return
        fd, self._stdin = self._stdin, None
        os.close(fd)

    def resize(self, height: int, width: int) -> None:
        """Set the pty window size (TIOCSWINSZ); ignored without a tty."""
        fd = self.process.stdout if self.tty else None
        if fd is None:
            return
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    # lifecycle -----------------------------------------------------------------------

    @property
    def at_eof(self) -> bool:
        return self._eof.is_set()

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait until every output fd reached EOF (or ``timeout``), then close."""
        try:
            async with asyncio.timeout(timeout):
                await self._eof.wait()
        except TimeoutError:
            log.debug("output of %d still open after exit; closing", self.process.pid)
        self.close()

    def close(self) -> None:
        """Stop reading, end every subscription, close our fds and the log driver."""
        if self.closed:
            return
        self.closed = True
        for fd in list(self._readers):
            self._finish_reader(fd)
        self._eof.set()
        for sub in self._all_subscriptions():
            sub._end()
        self._chunk_subs.clear()
        self._line_subs.clear()
        fds = {self.process.stdout, self.process.stderr, self._stdin}
        self._stdin = None
        for maybe_fd in fds:
            if maybe_fd is not None:
                try:
                    os.close(maybe_fd)
                except OSError:
                    pass
        if self._driver is not None:
            self._driver.close()


def _pieces(line: bytes) -> list[bytes]:
    return [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]


def _streams(stdout: bool, stderr: bool) -> frozenset[str]:
    return frozenset(s for s, on in (("stdout", stdout), ("stderr", stderr)) if on)


__all__ = ["StdioFanout", "Subscription", "Chunk", "MAX_LINE", "MAX_BACKLOG"]
