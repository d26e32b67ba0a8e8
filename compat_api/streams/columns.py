"""Multiplexed-stream frames for many log messages at once (see runtime.logs.columns).

One frame per message, exactly as :func:`compat_api.streams.stdcopy.encode_frame` would write
them one by one (and as dockerd sends them), built with a few vectorised copies instead of a
Python step per message. Loaded on first use: only large ``docker logs`` need it.
"""

from __future__ import annotations

import numpy as np

from compat_api.streams.stdcopy import MAX_FRAME_PAYLOAD, StreamType
from runtime.logs.columns import HEADROOM, STAMP, LogColumns


def encode_columns(columns: LogColumns, multiplexed: bool, timestamps: bool) -> bytes:
    """The bytes of every message of ``columns``: ``[header] [stamp " "] line``.

    Without a header (TTY) messages are just concatenated. Empty payloads get no frame (as
    ``encode_frame``); a payload above the frame limit falls back to ``encode_frame``.
    Headers and stamps are written into the free bytes before each message (see
    ``runtime.logs.columns.HEADROOM``): the columns are used up.
    """
    assert 8 + STAMP + 1 <= HEADROOM
    keep = columns.ends > columns.starts
    if not timestamps and not keep.all():
        columns = columns.select(keep)
    n = len(columns)
    if n == 0:
        return b""
    line_len = columns.ends - columns.starts
    prefix = STAMP + 1 if timestamps else 0
    payload = line_len + prefix
    if multiplexed and int(payload.max()) > MAX_FRAME_PAYLOAD:
        return _one_by_one(columns, timestamps)
    header = 8 if multiplexed else 0
    data = columns.data
    at = columns.starts - (header + prefix)     # free bytes (HEADROOM) before each message
    if multiplexed:
        # byte by byte: eight scatters of n bytes are cheaper than one of n 8-byte rows
        data[at] = np.where(columns.stderr, StreamType.STDERR, StreamType.STDOUT)
        data[at + 1] = 0
        data[at + 2] = 0
        data[at + 3] = 0
        size = payload.astype(">u4").view(np.uint8).reshape(n, 4)
        for i in range(4):
            data[at + 4 + i] = size[:, i]
    if timestamps:
        if columns.stamps is None:
            raise ValueError("timestamps asked of columns decoded without stamps")
        _windows(data, STAMP)[at + header] = columns.stamps
        data[at + header + STAMP] = ord(" ")
    # keep [at, end) of every message, in order: the mask is runs of False (the gap before
    # a message) and True (the message), one np.repeat (a cumsum of +1/-1 marks is 8x slower)
    bounds = np.empty(2 * n + 1, np.int64)
    bounds[0] = 0
    bounds[1::2] = at
    bounds[2::2] = columns.ends
    runs = np.zeros(2 * n, np.bool_)
    runs[1::2] = True
    inside = np.repeat(runs, np.diff(bounds))
    return data[:len(inside)][inside].tobytes()


def _windows(out: "np.ndarray[tuple[int], np.dtype[np.uint8]]", width: int) -> "np.ndarray[tuple[int, int], np.dtype[np.uint8]]":
    """Writable rows ``out[i:i + width]``: assigning rows scatters fixed-width fields."""
    return np.lib.stride_tricks.sliding_window_view(out, width, writeable=True)


def _one_by_one(columns: LogColumns, timestamps: bool) -> bytes:
    from compat_api.streams.stdcopy import encode_frame

    data = columns.data.tobytes()
    stamps = columns.stamps
    parts: list[bytes] = []
    for i, (start, end, err) in enumerate(zip(columns.starts.tolist(), columns.ends.tolist(),
                                              columns.stderr.tolist())):
        line = data[start:end]
        if timestamps and stamps is not None:
            line = stamps[i].tobytes() + b" " + line
        parts.append(encode_frame(StreamType.STDERR if err else StreamType.STDOUT, line))
    return b"".join(parts)


__all__ = ["encode_columns"]
