"""Hijacked connections for ``POST /containers/{id}/attach`` and ``POST /exec/{id}/start``.

This is the only module that touches aiohttp's private internals (checked against aiohttp
3.14). It takes the transport away from aiohttp's ``RequestHandler`` with
``transport.set_protocol``, so that from then on:

* aiohttp parses nothing more on this connection (no keep-alive, no pipelined requests)
  and cannot write to it: its handler's ``transport`` is set to ``None``, so any late
  write by aiohttp fails with a ``ConnectionError`` that aiohttp itself swallows;
* a client half-close (``shutdown(SHUT_WR)`` after stdin EOF) makes ``read()`` return
  ``b""`` while output can still be written. aiohttp's own protocol closes the transport
  on EOF, which is the classic ``echo x | docker exec -i c cat`` hang;
* bytes the client sent right after the request (stdin typed before the response
  arrived) are kept: aiohttp buffers them in ``RequestHandler._message_tail`` once its
  parser has seen a complete ``Connection: Upgrade`` request, and they become the first
  bytes ``read()`` returns.

Handler contract::

    body = await request.json()            # validate first: errors are still normal HTTP
    ...                                    # look up the exec/container, may raise
    stream = await hijack(request, content_type=MULTIPLEXED_STREAM)
    try:
        ...                                # pump stdin/stdout with read/write/drain
        stream.close_write()               # process ended: EOF to the client
    finally:
        return stream.response             # writes nothing; closes the connection

The handler must keep running until the session is over, and must return
``stream.response``. aiohttp then calls its ``prepare``, which flushes and closes the
connection and sends nothing else. Response headers set by middleware or
``on_response_prepare`` are never sent for a hijacked request; pass the ones the client
should see (exec start copies Api-Version, Docker-Experimental, Ostype and Server) as
``extra_headers``. If the handler raises after hijacking, the connection is closed when
its task ends, and no HTTP error response reaches the client. Report errors in-band
(a stdcopy SYSTEMERR frame) before that.

Without ``Upgrade`` the reply is ``200 OK`` followed by the raw stream. In that mode
aiohttp's parser did not know the connection would change protocol, so bytes the client
sent before the reply are lost (the Go client always upgrades, docker-py always asks to).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import hdrs, http_parser, web, web_protocol
from aiohttp.abc import AbstractStreamWriter

from runtime.linux.sockets import unread_by_peer

__all__ = [
    "HEADER_SETTLE_DELAY",
    "MULTIPLEXED_STREAM",
    "RAW_STREAM",
    "HijackedResponse",
    "HijackedStream",
    "enable_tcp_upgrade",
    "hijack",
    "wants_upgrade",
]

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"

# docker-py parses the status and headers with http.client's buffered reader, then reads
# the stream from the raw socket underneath it: payload that arrived in the same recv()
# as the headers is silently dropped (docker-py#3332). The header block is therefore
# flushed on its own, and where the kernel cannot tell when the client has read it (TCP),
# the first payload waits this long after it.
HEADER_SETTLE_DELAY = 0.005
# On unix sockets the payload waits instead until the client has read the header block.
HEADER_READ_TIMEOUT = 1.0

# Client-to-server bytes buffered before the transport stops reading (stdin backpressure).
_READ_HIGH_WATER = 256 * 1024
_DEFAULT_READ = 64 * 1024


_PROBE = b"GET / HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nx"


def _parser_keeps_tcp_upgrade_tail(parser_class: Any) -> bool:
    try:
        _, upgraded, tail = parser_class(None, None, 2**16).feed_data(_PROBE)
    except Exception:
        return False
    return bool(upgraded) and tail == b"x"


# How much of a connection's first read is looked at for an Upgrade header.
_FIRST_HEAD = 16384


class _ParserByFirstRequest:
    """aiohttp's C parser for a connection whose first request asks for no ``Upgrade``; the
    pure-Python one (which keeps the bytes after an ``Upgrade: tcp`` request) for the
    others, and for a connection whose first read does not hold the whole header block.

    The docker CLI dials a new connection for every attach and exec start, and types stdin
    at once: those connections get the Python parser from their first byte. docker-py may
    send an upgrade request on a connection it used before (then parsed in C), but writes
    to the stream only once it has read the response, so nothing it sent is lost. Every
    other connection (``inspect``, ``ps``, pulls, builds) is parsed in C: the Python parser
    cost 5% of a ``docker inspect``'s time in the daemon."""

    __slots__ = ("_args", "_kwargs", "_parser")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._parser: Any = None

    def _choose(self, first: bytes) -> Any:
        end = first.find(b"\r\n\r\n")
        upgrading = end < 0 or b"\nupgrade:" in first[:end].lower()
        parser_class = http_parser.HttpRequestParserPy if upgrading else _C_PARSER
        self._parser = parser_class(*self._args, **self._kwargs)
        return self._parser

    def feed_data(self, data: bytes) -> Any:
        parser = self._parser if self._parser is not None else self._choose(bytes(data[:_FIRST_HEAD]))
        return parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        parser = self._parser if self._parser is not None else self._choose(b"")
        return getattr(parser, name)


_C_PARSER: Any = None


def enable_tcp_upgrade() -> None:
    """Make aiohttp's server keep the bytes that follow an ``Upgrade: tcp`` request.

    aiohttp's C parser (3.14) only honours ``Upgrade: websocket``: for ``tcp`` it drops
    whatever followed the request in the same read, i.e. stdin the client sent at once.
    Its pure-Python parser honours ``tcp`` and hands those bytes over as the message tail.
    When the parser in use fails a probe, this makes each new connection choose (see
    :class:`_ParserByFirstRequest`). Idempotent; runs on import.
    """
    global _C_PARSER
    current = vars(web_protocol)["HttpRequestParser"]
    if current in (http_parser.HttpRequestParserPy, _ParserByFirstRequest) or _parser_keeps_tcp_upgrade_tail(current):
        return
    _C_PARSER = current
    setattr(web_protocol, "HttpRequestParser", _ParserByFirstRequest)


enable_tcp_upgrade()


def wants_upgrade(request: web.BaseRequest) -> bool:
    """True for ``Connection: Upgrade`` + ``Upgrade: tcp``, as the CLI and docker-py send."""
    connection = {t.strip().lower() for t in request.headers.get(hdrs.CONNECTION, "").split(",")}
    upgrade = request.headers.get(hdrs.UPGRADE, "").strip().lower()
    return "upgrade" in connection and upgrade == "tcp"


class _HijackProtocol(asyncio.Protocol):
    """Owns the transport after the hijack: buffers input, tracks EOF and write pauses."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        initial: bytes,
        writing_paused: bool,
        on_lost: Callable[[BaseException | None], None],
    ) -> None:
        self._loop = loop
        self.transport = transport
        self._buffer = bytearray(initial)
        self._eof = False
        self._lost = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._writing_paused = writing_paused
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self.closed: asyncio.Future[None] = loop.create_future()
        self._on_lost = on_lost

    # asyncio.Protocol callbacks

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake_reader()
        if len(self._buffer) > _READ_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # keep the transport open: output may still follow the client's EOF

    def connection_lost(self, exc: BaseException | None) -> None:
        self._eof = True
        self._lost = True
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("Connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)
        # aiohttp still counts the connection as open until its handler hears of the loss.
        self._on_lost(exc)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # used by HijackedStream

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, n: int) -> bytes:
        while not self._buffer and not self._eof:
            if self._read_waiter is not None:
                raise RuntimeError("read() called while another read() is waiting")
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        if not self._buffer:
            return b""
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._reading_paused and len(self._buffer) <= _READ_HIGH_WATER // 4 and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if not self._writing_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)

    @property
    def lost(self) -> bool:
        return self._lost

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buffer


class HijackedResponse(web.StreamResponse):
    """What a hijacking handler returns: aiohttp "prepares" it, which writes nothing and
    closes the hijacked connection (after flushing what the handler wrote)."""

    def __init__(self, stream: HijackedStream, status: int) -> None:
        super().__init__(status=status)
        self._stream = stream
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        self._stream.close()
        return None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("write to the HijackedStream, not to its response")

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class HijackedStream:
    """A bidirectional byte stream over a hijacked HTTP connection.

    ``read`` returns ``b""`` once the client has half-closed or gone; ``write`` may still
    be used after that. Only one coroutine may wait in ``read`` at a time.
    """

    def __init__(self, protocol: _HijackProtocol, *, upgraded: bool) -> None:
        self._protocol = protocol
        self._write_closed = False
        self.upgraded = upgraded
        self.response = HijackedResponse(self, 101 if upgraded else 200)

    async def read(self, n: int = _DEFAULT_READ) -> bytes:
        """Up to ``n`` bytes (all buffered bytes if ``n < 0``); ``b""`` on EOF or loss."""
        return await self._protocol.read(n)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; raises ``ConnectionResetError`` once the connection is gone."""
        if self._write_closed:
            raise RuntimeError("write() after close_write()")
        transport = self._protocol.transport
        if self._protocol.lost or transport.is_closing():
            raise ConnectionResetError("Connection lost")
        if data:
            transport.write(data)

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        await self._protocol.drain()

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        self.write(data)
        await self.drain()

    async def flush(self) -> None:
        """Wait until everything written so far has been handed to the kernel."""
        transport = self._protocol.transport
        if transport.get_write_buffer_size() == 0:
            return
        high, low = transport.get_write_buffer_limits()
        # With a zero limit the transport pauses us now and resumes us at empty buffer.
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            await self._protocol.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    def close_write(self) -> None:
        """Half-close: ``shutdown(SHUT_WR)`` once buffered output is flushed; reads go on.

        Transports that cannot half-close (TLS) are closed instead.
        """
        if self._write_closed:
            return
        self._write_closed = True
        transport = self._protocol.transport
        if transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def close(self) -> None:
        """Close the connection after flushing buffered output. Idempotent."""
        self._write_closed = True
        self._protocol.transport.close()

    def abort(self) -> None:
        """Close at once, dropping buffered output."""
        self._write_closed = True
        self._protocol.transport.abort()

    async def wait_closed(self) -> None:
        await self._protocol.closed

    @property
    def at_eof(self) -> bool:
        """The client half-closed (or left) and every byte it sent has been read."""
        return self._protocol.at_eof

    @property
    def is_closing(self) -> bool:
        return self._protocol.lost or self._protocol.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._protocol.transport.get_extra_info(name, default)


def _header_block(upgraded: bool, content_type: str, extra_headers: Mapping[str, str]) -> bytes:
    lines = ["HTTP/1.1 101 UPGRADED" if upgraded else "HTTP/1.1 200 OK", f"Content-Type: {content_type}"]
    if upgraded:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    lines += [f"{name}: {value}" for name, value in extra_headers.items()]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"invalid header line {line!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def hijack(
    request: web.Request,
    *,
    content_type: str,
    extra_headers: Mapping[str, str] = {},
    settle_delay: float = HEADER_SETTLE_DELAY,
) -> HijackedStream:
    """Take the connection over from aiohttp and send the status and header block.

    Returns once the header block has been handed to the kernel in its own write and
    ``settle_delay`` has passed. Call it only after all validation: from here on errors
    can only be reported in-band. Raises ``ConnectionResetError`` if the client is gone.
    """
    upgraded = wants_upgrade(request)
    header = _header_block(upgraded, content_type, extra_headers)
    # An upgrade takes effect only after the request body, so the body must be consumed
    # for the bytes that follow it to be in the tail taken below.
    await request.read()

    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("Connection lost")
    assert isinstance(transport, asyncio.Transport)
    handler: Any = request.protocol  # aiohttp's RequestHandler (private attributes below)
    tail: bytes = getattr(handler, "_message_tail", b"") if upgraded else b""
    if tail:
        handler._message_tail = b""

    loop = asyncio.get_running_loop()
    protocol = _HijackProtocol(
        loop, transport, tail, writing_paused=bool(handler.writing_paused), on_lost=handler.connection_lost
    )
    transport.set_protocol(protocol)
    handler.keep_alive(False)
    handler.transport = None
    if not transport.is_reading():
        # aiohttp may have paused reading while it held the tail for us.
        transport.resume_reading()

    stream = HijackedStream(protocol, upgraded=upgraded)
    task = asyncio.current_task()
    if task is not None:
        # Whatever way the handler ends (return, exception, cancellation), the connection
        # must not outlive it: aiohttp no longer knows the transport exists.
        task.add_done_callback(lambda _: stream.close())

    transport.write(header)
    await stream.flush()
    await _until_header_read(transport, settle_delay)
    return stream


async def _until_header_read(transport: asyncio.Transport, settle_delay: float) -> None:
    """Hold the first payload back until the client has read the header block: on a unix
    socket the kernel tells (waiting at most HEADER_READ_TIMEOUT for a client that does not
    read yet); elsewhere ``settle_delay`` has to do. A fixed delay alone lost the output of
    ``attach?logs=1&stream=0`` to docker-py whenever the client was scheduled late."""
    sock = transport.get_extra_info("socket")
    unread = unread_by_peer(sock) if sock is not None else None
    if unread is None:
        if settle_delay > 0:
            await asyncio.sleep(settle_delay)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HEADER_READ_TIMEOUT
    while unread and loop.time() < deadline:
        await asyncio.sleep(0.001)
        unread = unread_by_peer(sock) or 0

