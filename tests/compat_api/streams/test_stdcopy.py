from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat_api.streams.stdcopy import (
    HEADER_SIZE,
    Frame,
    FrameDecoder,
    StreamType,
    TruncatedFrameError,
    UnknownStreamError,
    encode_frame,
)


def test_header_layout_matches_docker_py_unpacking() -> None:
    frame = encode_frame(StreamType.STDERR, b"oops\n")
    kind, size = struct.unpack(">BxxxL", frame[:HEADER_SIZE])
    assert (kind, size) == (2, 5)
    assert frame[1:4] == b"\x00\x00\x00"
    assert frame[HEADER_SIZE:] == b"oops\n"


def test_stream_type_values() -> None:
    assert [int(t) for t in StreamType] == [0, 1, 2, 3]


def test_empty_payload_yields_nothing_unless_asked() -> None:
    assert encode_frame(StreamType.STDOUT, b"") == b""
    assert encode_frame(StreamType.STDOUT, b"", emit_empty=True) == b"\x01\x00\x00\x00\x00\x00\x00\x00"


def test_large_payload_is_split_into_bounded_frames() -> None:
    data = bytes(range(256)) * 10  # 2560 bytes
    encoded = encode_frame(StreamType.STDOUT, data, max_payload=1000)
    frames = FrameDecoder().feed(encoded)
    assert [len(f.payload) for f in frames] == [1000, 1000, 560]
    assert all(f.stream is StreamType.STDOUT for f in frames)
    assert b"".join(f.payload for f in frames) == data


def test_accepts_memoryview_and_bytearray() -> None:
    assert encode_frame(StreamType.STDOUT, bytearray(b"ab")) == encode_frame(StreamType.STDOUT, memoryview(b"ab"))


def test_decoder_reassembles_byte_by_byte() -> None:
    stream = encode_frame(StreamType.STDOUT, b"hello") + encode_frame(StreamType.STDERR, b"world")
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    assert frames == [Frame(StreamType.STDOUT, b"hello"), Frame(StreamType.STDERR, b"world")]
    assert decoder.pending == 0
    decoder.close()


def test_decoder_returns_zero_length_frames() -> None:
    frames = FrameDecoder().feed(encode_frame(StreamType.STDOUT, b"", emit_empty=True))
    assert frames == [Frame(StreamType.STDOUT, b"")]


def test_unknown_stream_type_raises_after_delivering_earlier_frames() -> None:
    decoder = FrameDecoder()
    good = encode_frame(StreamType.STDOUT, b"ok")
    bad = b"\x07\x00\x00\x00\x00\x00\x00\x01x"
    assert decoder.feed(good + bad) == [Frame(StreamType.STDOUT, b"ok")]
    with pytest.raises(UnknownStreamError, match="Unrecognized input header: 7"):
        decoder.feed(b"")
    with pytest.raises(UnknownStreamError):
        decoder.close()


def test_unknown_stream_type_alone_raises_immediately() -> None:
    with pytest.raises(UnknownStreamError) as info:
        FrameDecoder().feed(b"\x09\x00\x00\x00\x00\x00\x00\x00")
    assert info.value.value == 9


def test_close_inside_frame_reports_truncation() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(StreamType.STDOUT, b"abcdef")[:-2]) == []
    with pytest.raises(TruncatedFrameError):
        decoder.close()


def test_encode_rejects_unknown_stream() -> None:
    with pytest.raises(ValueError):
        encode_frame(5, b"x")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.tuples(st.sampled_from(list(StreamType)), st.binary(max_size=300)), max_size=12),
    cut_points=st.lists(st.integers(min_value=0, max_value=5000), max_size=8),
    max_payload=st.integers(min_value=1, max_value=128),
)
def test_roundtrip_any_split(
    messages: list[tuple[StreamType, bytes]], cut_points: list[int], max_payload: int
) -> None:
    wire = b"".join(encode_frame(s, d, max_payload=max_payload) for s, d in messages)
    decoder = FrameDecoder()
    frames: list[Frame] = []
    previous = 0
    for cut in sorted(c for c in cut_points if c <= len(wire)) + [len(wire)]:
        frames += decoder.feed(wire[previous:cut])
        previous = cut
    decoder.close()
    assert all(0 < len(f.payload) <= max_payload for f in frames)
    # Per stream, the concatenated payloads must survive in order.
    for stream in StreamType:
        sent = b"".join(d for s, d in messages if s == stream)
        assert b"".join(f.payload for f in frames if f.stream == stream) == sent
    assert [f.stream for f in frames if f.payload] == [
        s for s, d in messages for _ in range(-(-len(d) // max_payload))
    ]
