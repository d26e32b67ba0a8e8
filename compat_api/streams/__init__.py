"""Wire-level stream primitives: stdcopy framing, hijacked connections, JSON progress."""

from compat_api.streams.hijack import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    HijackedResponse,
    HijackedStream,
    enable_tcp_upgrade,
    hijack,
    wants_upgrade,
)
from compat_api.streams.jsonmessage import JSONMessage, JsonMessageWriter, human_size, render_progress
from compat_api.streams.stdcopy import Frame, FrameDecoder, StdcopyError, StreamType, encode_frame

__all__ = [
    "MULTIPLEXED_STREAM",
    "RAW_STREAM",
    "Frame",
    "FrameDecoder",
    "HijackedResponse",
    "HijackedStream",
    "JSONMessage",
    "JsonMessageWriter",
    "StdcopyError",
    "StreamType",
    "enable_tcp_upgrade",
    "encode_frame",
    "hijack",
    "human_size",
    "render_progress",
    "wants_upgrade",
]
