from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os

import pytest
import zstandard

from runtime.archive.compression import Compression, decompressed_chunks, detect
from runtime.archive.errors import MalformedArchive

PAYLOAD = os.urandom(200_000) + b"z" * 3_000_000

CASES = [
    (Compression.NONE, lambda b: b),
    (Compression.GZIP, gzip.compress),
    (Compression.BZIP2, bz2.compress),
    (Compression.XZ, lzma.compress),
    (Compression.ZSTD, lambda b: zstandard.ZstdCompressor().compress(b)),
]


@pytest.mark.parametrize("kind,compress", CASES, ids=[c[0].value for c in CASES])
def test_detect_and_decompress(kind: Compression, compress) -> None:  # type: ignore[no-untyped-def]
    blob = compress(PAYLOAD)
    assert detect(blob[:6]) is kind
    got_kind, chunks = decompressed_chunks(io.BytesIO(blob), chunk=64 * 1024)
    pieces = list(chunks)
    assert got_kind is kind
    assert b"".join(pieces) == PAYLOAD
    assert max(len(p) for p in pieces) <= 1 << 20  # bounded output per step (bombs)


def test_multi_member_gzip_and_trailing_zero_padding() -> None:
    blob = gzip.compress(b"one") + gzip.compress(b"two") + b"\0" * 100
    _, chunks = decompressed_chunks(io.BytesIO(blob))
    assert b"".join(chunks) == b"onetwo"


@pytest.mark.parametrize("kind,compress", CASES[1:4], ids=[c[0].value for c in CASES[1:4]])
def test_truncated_input_is_an_error(kind: Compression, compress) -> None:  # type: ignore[no-untyped-def]
    blob = compress(PAYLOAD)
    _, chunks = decompressed_chunks(io.BytesIO(blob[: len(blob) // 2]))
    with pytest.raises(MalformedArchive):
        b"".join(chunks)


def test_short_and_empty_inputs() -> None:
    assert detect(b"") is Compression.NONE
    kind, chunks = decompressed_chunks(io.BytesIO(b"ab"))
    assert kind is Compression.NONE and b"".join(chunks) == b"ab"


def test_truncated_zstd_yields_a_prefix() -> None:
    # python-zstandard reports no error for a cut frame; the tar reader then sees a short
    # stream ("unexpected EOF"), so the damage is still detected one level up
    blob = zstandard.ZstdCompressor().compress(PAYLOAD)
    _, chunks = decompressed_chunks(io.BytesIO(blob[: len(blob) - 10]))
    out = b"".join(chunks)
    assert len(out) < len(PAYLOAD) and PAYLOAD.startswith(out)
