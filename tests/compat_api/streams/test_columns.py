"""Frames for log columns are byte for byte the frames written one message at a time."""

from __future__ import annotations

import pytest

from compat_api.routers.containers.streaming import frame
from compat_api.streams.columns import encode_columns
from runtime.logs.columns import decode_lines
from runtime.logs.jsonfile import decode_entry, encode_entries
from runtime.timefmt import rfc3339_nano_fixed
from tests.runtime.logs.test_columns import T0, tricky_block


def one_by_one(block: bytes, multiplexed: bool, timestamps: bool) -> bytes:
    out = []
    for raw in block.split(b"\n"):
        message = decode_entry(raw)
        if message is None:
            continue
        data = message.line
        if timestamps:
            data = rfc3339_nano_fixed(message.time_ns).encode() + b" " + data
        out.append(frame(message.stream, data, multiplexed))
    return b"".join(out)


@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize("multiplexed", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_same_bytes_as_frame_by_frame(seed: int, multiplexed: bool, timestamps: bool) -> None:
    block = tricky_block(seed)
    columns = decode_lines(block, timestamps, decode_entry)
    assert encode_columns(columns, multiplexed, timestamps) == one_by_one(block, multiplexed,
                                                                          timestamps)


def test_oversized_line_is_split_like_encode_frame() -> None:
    block = b"".join(encode_entries("stdout", [b"z" * 70_000 + b"\n", b"small\n"], T0))
    columns = decode_lines(block, False, decode_entry)
    assert encode_columns(columns, True, False) == one_by_one(block, True, False)


def test_empty_columns() -> None:
    columns = decode_lines(b"\n\n", False, decode_entry)
    assert encode_columns(columns, True, True) == b""
