"""Pumping an attach session over a hijacked connection (shared by attach and exec start)."""

from __future__ import annotations

import asyncio
import contextlib

from compat_api.streams.hijack import HijackedStream
from compat_api.streams.stdcopy import StreamType, encode_frame
from runtime.containers.attach import Attachment

_STREAMS = {"stdout": StreamType.STDOUT, "stderr": StreamType.STDERR}


def frame(stream: str, data: bytes, multiplexed: bool) -> bytes:
    return encode_frame(_STREAMS.get(stream, StreamType.STDOUT), data) if multiplexed else data


async def pump(stream: HijackedStream, attachment: Attachment, multiplexed: bool) -> None:
    """Client stdin -> process; process output -> client, until output ends, the client
    detaches, or the connection is lost. A client half-close only ends the input side."""

    async def output() -> None:
        async for name, data in attachment.output():
            stream.write(frame(name, data, multiplexed))
            await stream.drain()

    async def input_() -> None:
        while True:
            data = await stream.read()
            if not data:
                if stream.is_closing:
                    return  # the client is gone, not merely half-closed
                await attachment.send_eof()
                return
            await attachment.send(data)

    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input_())
    try:
        while not out_task.done():
            done, _ = await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
            if in_task in done and not out_task.done():
                if stream.is_closing:
                    out_task.cancel()  # connection lost: nobody to write to
                    break
                await asyncio.wait({out_task})  # half-close: keep streaming output
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await out_task
    finally:
        for task in (out_task, in_task):
            task.cancel()
        attachment.close()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await stream.flush()


__all__ = ["frame", "pump"]
