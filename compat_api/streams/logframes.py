"""Writing a logs response: batches of log messages framed and written in bulk.

Small batches (lists of messages: a small log, or lines while following) are framed here, on
the event loop. Large blocks (:class:`runtime.logs.columns.LogColumns`) are framed in a worker
thread, and the framing of block k+1 runs while block k is being written (and the reader
decodes block k+2), so reading, framing and sending overlap and the event loop only copies
bytes to the socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any, Protocol

from compat_api.streams.stdcopy import StreamType, encode_frame
from runtime.logs.driver import LogBatch
from runtime.timefmt import rfc3339_nano_fixed

_STREAMS = {"stdout": StreamType.STDOUT, "stderr": StreamType.STDERR}


class _Writer(Protocol):
    async def write(self, data: bytes) -> None: ...


#: Kernel send buffer of a logs response: a few MB of frames queued let the client and the
#: engine run in bursts (each on its core, or in turns on a busy machine) without waiting on
#: each other; the default (~200 KB) is a few ms of the docker CLI's work.
SEND_BUFFER = 4 << 20


def widen_send_buffer(transport: Any) -> None:
    """Raise the connection's send buffer to :data:`SEND_BUFFER` (past ``wmem_max`` when
    allowed, as root). Only a limit: memory is used as frames wait for the client."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    for option in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SEND_BUFFER)
            return
        except OSError:
            continue


def frame_messages(batch: LogBatch, multiplexed: bool, timestamps: bool) -> bytes:
    """The bytes of one batch: ``[header] [stamp " "] line`` per message, as dockerd frames
    them (one frame per message; none for an empty one)."""
    if not isinstance(batch, list):
        from compat_api.streams.columns import encode_columns

        return encode_columns(batch, multiplexed, timestamps)
    parts = []
    for message in batch:
        data = message.line
        if timestamps:
            data = rfc3339_nano_fixed(message.time_ns).encode() + b" " + data
        if multiplexed:
            parts.append(encode_frame(_STREAMS.get(message.stream, StreamType.STDOUT), data))
        else:
            parts.append(data)
    return b"".join(parts)


async def write_log_batches(out: _Writer, batches: AsyncIterator[LogBatch], multiplexed: bool,
                            timestamps: bool) -> None:
    """Frame and write every batch, in order."""
    framing: asyncio.Future[bytes] | None = None    # the previous large block, being framed
    try:
        async for batch in batches:
            if isinstance(batch, list):
                if framing is not None:
                    await out.write(await framing)
                    framing = None
                await out.write(frame_messages(batch, multiplexed, timestamps))
                continue
            following = asyncio.ensure_future(
                asyncio.to_thread(frame_messages, batch, multiplexed, timestamps))
            previous, framing = framing, following
            if previous is not None:
                await out.write(await previous)
        if framing is not None:
            await out.write(await framing)
            framing = None
    finally:
        if framing is not None:
            framing.cancel()


__all__ = ["frame_messages", "widen_send_buffer", "write_log_batches"]
