"""Docker's multiplexed stream framing ("stdcopy"), pure and without I/O.

Every frame is an 8-byte header ``[stream, 0, 0, 0, size (big-endian uint32)]`` followed by
``size`` payload bytes. It is used for attach, logs and exec output whenever there is no TTY.
Clients pick the demux mode from the container's ``Config.Tty``, never from the response's
Content-Type, so a frame must never be written on a TTY stream and vice versa.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAME_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "StdcopyError",
    "StreamType",
    "TruncatedFrameError",
    "UnknownStreamError",
    "encode_frame",
]

_HEADER = struct.Struct(">BxxxL")
HEADER_SIZE = _HEADER.size

# No client limits the frame size (the Go reader grows its buffer, docker-py reads exactly
# `size` bytes), but bounded frames keep one huge write from becoming one huge allocation
# on the reading side.
MAX_FRAME_PAYLOAD = 1 << 16


class StreamType(enum.IntEnum):
    """The first header byte. Clients print STDIN frames as stdout; SYSTEMERR makes Go's
    ``StdCopy`` fail with "error from daemon in stream: <payload>"."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2
    SYSTEMERR = 3


_KNOWN_TYPES = frozenset(int(t) for t in StreamType)


class Frame(NamedTuple):
    stream: StreamType
    payload: bytes


class StdcopyError(ValueError):
    """The byte stream is not valid multiplexed framing."""


class UnknownStreamError(StdcopyError):
    def __init__(self, value: int) -> None:
        super().__init__(f"Unrecognized input header: {value}")
        self.value = value


class TruncatedFrameError(StdcopyError):
    def __init__(self, pending: int) -> None:
        super().__init__(f"multiplexed stream ended inside a frame ({pending} bytes pending)")
        self.pending = pending


def encode_frame(
    stream: StreamType,
    data: bytes | bytearray | memoryview,
    *,
    emit_empty: bool = False,
    max_payload: int = MAX_FRAME_PAYLOAD,
) -> bytes:
    """Frame ``data`` for ``stream``; payloads above ``max_payload`` become several frames.

    An empty payload encodes to ``b""`` unless ``emit_empty`` asks for one zero-length frame
    (legal, but docker-py skips them and nothing should depend on them).
    """
    if max_payload <= 0:
        raise ValueError("max_payload must be positive")
    stream = StreamType(stream)
    view = memoryview(data).cast("B")
    size = len(view)
    if size == 0:
        return _HEADER.pack(stream, 0) if emit_empty else b""
    if size <= max_payload:
        return _HEADER.pack(stream, size) + view.tobytes()
    parts: list[bytes] = []
    for offset in range(0, size, max_payload):
        chunk = view[offset : offset + max_payload]
        parts.append(_HEADER.pack(stream, len(chunk)))
        parts.append(chunk.tobytes())
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder: ``feed`` arbitrary slices of the stream, get whole frames back.

    Zero-length frames are returned as they are; callers that print output can skip them.
    After the last ``feed``, ``close`` raises if the stream stopped inside a frame.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        buf = self._buffer
        offset = 0
        while len(buf) - offset >= HEADER_SIZE:
            kind, size = _HEADER.unpack_from(buf, offset)
            try:
                stream = StreamType(kind)
            except ValueError:
                # The bad header stays buffered so the error repeats (there is no way to
                # resynchronise); frames decoded before it are still delivered first.
                del buf[:offset]
                if frames:
                    return frames
                raise UnknownStreamError(kind) from None
            end = offset + HEADER_SIZE + size
            if len(buf) < end:
                break
            frames.append(Frame(stream, bytes(buf[offset + HEADER_SIZE : end])))
            offset = end
        del buf[:offset]
        return frames

    def close(self) -> None:
        """Declare end of stream; raises ``TruncatedFrameError`` if a frame is incomplete."""
        if len(self._buffer) >= HEADER_SIZE and self._buffer[0] not in _KNOWN_TYPES:
            raise UnknownStreamError(self._buffer[0])
        if self._buffer:
            raise TruncatedFrameError(len(self._buffer))
