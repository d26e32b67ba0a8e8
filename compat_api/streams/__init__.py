"""Wire-level stream primitives: stdcopy framing, hijacked connections, JSON progress."""

from compat_api.streams.stdcopy import Frame, FrameDecoder, StdcopyError, StreamType, encode_frame

__all__ = [
    "Frame",
    "FrameDecoder",
    "StdcopyError",
    "StreamType",
    "encode_frame",
]
