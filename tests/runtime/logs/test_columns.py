"""The column-wise json-file decoder gives exactly what the per-line JSON decoder gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from runtime.logs import jsonfile
from runtime.logs.columns import HEADROOM, LogColumns, decode_lines
from runtime.logs.driver import LogMessage, ReadOptions
from runtime.logs.jsonfile import JsonFileReader, decode_entry, encode_entries
from runtime.timefmt import rfc3339_nano_fixed

T0 = 1_795_831_030_103_317_529

TRICKY_TEXTS = [
    b"plain\n", b"\n", b"", b"no newline (partial)", b"tab\there\n", b'quote " and \\ slash\n',
    "unicode \u00e9\u4e2d\U0001f600\n".encode(), b"<html> & friends\n", b"ctl \x01\x08\x0c\n",
    "line sep \u2028 \u2029\n".encode(), b"two\nlines\n", b"cr\r\n", b"\\n literally\n",
    b"ends with backslash \\", b'"quoted"\n', b"x" * 300 + b"\n",
]

HAND_LINES = [
    # attrs (labels/env) between stream and time, as dockerd writes them
    b'{"log":"with attrs\\n","stream":"stdout","attrs":{"a":"b"},"time":"2026-11-28T01:57:10.1Z"}',
    # other key order, spaces, a time with an offset, no fraction, a short fraction
    b'{"stream":"stderr","log":"reordered\\n","time":"2026-11-28T01:57:10.5Z"}',
    b'{"log": "spaced\\n", "stream": "stdout", "time": "2026-11-28T01:57:10Z"}',
    b'{"log":"offset\\n","stream":"stdout","time":"2026-11-28T03:57:10.25+02:00"}',
    b'{"log":"no fraction\\n","stream":"stdout","time":"2026-11-28T01:57:10Z"}',
    b'{"log":"bad time\\n","stream":"stdout","time":"2026-11-28 01:57:10Z"}',
    b'{"log":"letters in time\\n","stream":"stdout","time":"2026-11-28T01:57:1xZ"}',
    b'{"log":"no stream\\n","time":"2026-11-28T01:57:10.000000001Z"}',
    b'{"log":"other stream\\n","stream":"stdin","time":"2026-11-28T01:57:10.1Z"}',
    b"not json at all",
    b"",
    b"   ",
    b'{"log":"truncated',
]


def per_line(block: bytes) -> list[LogMessage]:
    return [m for m in map(decode_entry, block.split(b"\n")) if m is not None]


def as_tuples(messages: list[LogMessage], stamps: bool) -> list[tuple[str, bytes, int]]:
    # columns know stdout and stderr; any other stream name is framed as stdout anyway
    return [("stderr" if m.stream == "stderr" else "stdout", m.line, m.time_ns if stamps else 0)
            for m in messages]


def tricky_block(seed: int, count: int = 400) -> bytes:
    rng = random.Random(seed)
    lines: list[bytes] = []
    t = T0
    for _ in range(count):
        t += rng.choice([0, 1, 10, 100_000_000, 999_999_999, 1_000_000_000])
        if rng.random() < 0.1:
            lines.append(rng.choice(HAND_LINES) + b"\n")
            continue
        text = rng.choice(TRICKY_TEXTS) if rng.random() < 0.5 else f"line {rng.random()}\n".encode()
        lines += encode_entries(rng.choice(["stdout", "stderr"]), [text], t)
    return b"".join(lines)


@pytest.mark.parametrize("stamps", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_tricky_lines_decode_as_json_does(seed: int, stamps: bool) -> None:
    block = tricky_block(seed)
    columns = decode_lines(block, stamps, decode_entry)
    assert as_tuples(columns.messages(), stamps) == as_tuples(per_line(block), stamps)


@pytest.mark.parametrize("stamps", [False, True])
def test_regular_block_takes_the_fast_path(stamps: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    block = b"".join(encode_entries(s, [f"{i} x\n".encode()], T0 + i * 123)[0]
                     for i, s in enumerate(["stdout", "stderr"] * 500))

    def no_fallback(raw: bytes) -> LogMessage | None:
        raise AssertionError(f"per-line decode of {raw!r}")

    columns = decode_lines(block, stamps, no_fallback)
    assert as_tuples(columns.messages(), stamps) == as_tuples(per_line(block), stamps)
    if stamps:
        assert columns.stamps is not None
        assert [r.tobytes().decode() for r in columns.stamps[:2]] == [
            rfc3339_nano_fixed(T0), rfc3339_nano_fixed(T0 + 123)]


@pytest.mark.parametrize("odd", [
    # an extra key with unescaped quotes inside what looks like the text
    b'{"log":"a","x":"b\\n","stream":"stdout","time":"2026-11-28T01:57:10.1Z"}',
    # quotes and backslashes that only balance the block's totals with the line below
    b'{"log":"q\\"\\n","stream":"stdout","time":"2026-11-28T01:57:10.123456789Z"}',
    # a time of 20 and one of 31 bytes
    b'{"log":"short\\n","stream":"stdout","time":"2026-11-28T01:57:10Z"}',
    b'{"log":"long\\n","stream":"stdout","time":"2026-11-28T01:57:10.1234567891Z"}',
    # text ending right where the prefix does
    b'{"log":"\\n","stream":"stderr","time":"2026-11-28T01:57:10.5Z"}',
])
@pytest.mark.parametrize("stamps", [False, True])
def test_odd_line_in_a_regular_block_decodes_as_json_does(odd: bytes, stamps: bool) -> None:
    regular = [encode_entries("stdout", [f"{i} x\n".encode()], T0 + i)[0] for i in range(50)]
    block = b"".join(regular[:20] + [odd + b"\n"] + regular[20:])
    columns = decode_lines(block, stamps, decode_entry)
    assert as_tuples(columns.messages(), stamps) == as_tuples(per_line(block), stamps)


def test_every_message_has_headroom() -> None:
    block = tricky_block(7)
    columns = decode_lines(block, True, decode_entry)
    starts, ends = columns.starts.tolist(), columns.ends.tolist()
    assert starts[0] >= HEADROOM
    assert all(s - e >= HEADROOM for e, s in zip(ends, starts[1:]))


def test_time_filters_compare_fixed_stamps() -> None:
    block = b"".join(encode_entries("stdout", [b"a\n"], T0 + i * 500_000_000)[0] for i in range(8))
    columns = decode_lines(block, True, decode_entry)
    assert columns.at_or_after(T0 + 1_000_000_000).tolist() == [False] * 2 + [True] * 6
    assert columns.after(T0 + 1_000_000_000).tolist() == [False] * 3 + [True] * 5
    assert isinstance(columns.only("stderr"), LogColumns) and len(columns.only("stderr")) == 0


async def read_all(path: Path, **options: object) -> list[tuple[str, bytes, int]]:
    reader = JsonFileReader(path)
    return [(m.stream, m.line, m.time_ns)
            async for m in reader.read(ReadOptions(**options))]  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [
    {}, {"tail": 5}, {"tail": 3000}, {"since_ns": T0 + 1_000_000_000 * 2000},
    {"until_ns": T0 + 1_000_000_000 * 1000}, {"since_ns": T0 + 10**12, "until_ns": T0 + 2 * 10**12},
])
async def test_large_file_reads_like_small_files(tmp_path: Path, options: dict[str, int],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "c-json.log"
    entries = [encode_entries("stderr" if i % 7 == 0 else "stdout",
                              [f"entry {i} <&> \u00e9\n".encode()], T0 + i * 999_999_937)[0]
               for i in range(6000)]
    log.write_bytes(b"".join(entries))
    assert log.stat().st_size > jsonfile.COLUMNS_MIN
    monkeypatch.setattr(jsonfile, "COLUMNS_BLOCK", 64 * 1024)   # several blocks
    fast = await read_all(log, **options)
    monkeypatch.setattr(jsonfile, "COLUMNS_MIN", 1 << 40)
    slow = await read_all(log, **options)
    assert fast == slow
    assert fast


async def test_batches_are_columns_for_large_files(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(b"".join(encode_entries("stdout", [b"y" * 100 + b"\n"] * 4000, T0)))
    batches = [b async for b in JsonFileReader(log).read_batches(ReadOptions())]
    assert batches and all(isinstance(b, LogColumns) for b in batches)
    assert sum(len(b) for b in batches) == 4000


def test_hand_lines_are_what_json_says() -> None:
    # the expectations above come from json.loads, not from the code under test
    entry = json.loads(HAND_LINES[0])
    assert entry["attrs"] == {"a": "b"}


def test_stamp_comparison_is_byte_order() -> None:
    from runtime.logs.columns import _compare_ge

    rng = random.Random(3)
    stamps = [rfc3339_nano_fixed(T0 + rng.randrange(-10**12, 10**12)).encode() for _ in range(500)]
    stamps += [stamps[0][:-2] + b"9Z", stamps[1][:25] + b"0000Z"]
    rows = np.array([list(s) for s in stamps], np.uint8)
    for key in stamps[:50] + [rfc3339_nano_fixed(T0 + rng.randrange(-10**12, 10**12)).encode()
                              for _ in range(50)]:
        assert _compare_ge(rows, key).tolist() == [s >= key for s in stamps]
