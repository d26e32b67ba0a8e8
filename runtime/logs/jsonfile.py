"""The json-file log driver, byte-compatible with dockerd's.

On disk: ``<data-root>/containers/<id>/<id>-json.log``, one JSON object per line,
``{"log":"hi\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}``, with
rotation to ``<file>.1`` ... ``<file>.<max-file - 1>`` once the file reaches ``max-size``
(checked before each write, as dockerd does, so a file may exceed it by one line).
The reader serves ``tail`` by scanning the files backwards in blocks.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.logs.driver import LogBatch, LogMessage, ReadOptions, json_file_options
from runtime.timefmt import parse_rfc3339, rfc3339_nano

if TYPE_CHECKING:
    from runtime.logs.columns import LogColumns

BLOCK = 64 * 1024
COLUMNS_MIN = 256 * 1024      # ranges this large are decoded column-wise (numpy)
COLUMNS_BLOCK = 512 * 1024   # ~6k lines: each step holds the event loop a few ms
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def encode_string(text: str) -> str:
    """A JSON string as Go's encoder writes it: HTML characters and U+2028/9 escaped,
    other non-ASCII raw, control characters as \\n \\r \\t or \\u00XX."""
    out = json.dumps(text, ensure_ascii=False)
    if "\b" in text or "\f" in text:
        out = "".join(_go_char(ch) for ch in text).join('""')
    for raw, escaped in _GO_ESCAPES.items():
        if raw in out:
            out = out.replace(raw, escaped)
    return out


def _go_char(ch: str) -> str:
    if ch == '"':
        return '\\"'
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if ord(ch) < 0x20:
        return f"\\u{ord(ch):04x}"
    return ch


def encode_entry(message: LogMessage) -> bytes:
    return encode_entries(message.stream, [message.line], message.time_ns)[0]


def encode_entries(stream: str, lines: list[bytes], time_ns: int) -> list[bytes]:
    """Entries for lines sharing a stream and timestamp (the common case of one read)."""
    suffix = f',"stream":"{stream}","time":"{rfc3339_nano(time_ns)}"}}\n'
    return [f'{{"log":{encode_string(line.decode("utf-8", errors="replace"))}{suffix}'.encode()
            for line in lines]


class JsonFileDriver:
    """Appends one line per message; rotates by size. Not thread-safe (event loop only)."""

    name = "json-file"

    def __init__(self, path: Path, max_size: int = -1, max_file: int = 1) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    @classmethod
    def from_options(cls, path: Path, options: Mapping[str, str]) -> JsonFileDriver:
        settings = json_file_options(options)
        return cls(path, settings.max_size, settings.max_file)

    def log(self, message: LogMessage) -> None:
        self.log_lines(message.stream, [message.line], message.time_ns)

    def log_lines(self, stream: str, lines: list[bytes], time_ns: int) -> None:
        """Append several lines read together (one timestamp) with as few writes as the
        rotation limit allows: the size is checked before each line, as dockerd does."""
        if self._fd < 0 or not lines:
            return
        entries = encode_entries(stream, lines, time_ns)
        if self.max_size <= 0:
            self._write(b"".join(entries))
            return
        pending: list[bytes] = []
        size = self._size
        for entry in entries:
            if size >= self.max_size:
                self._write(b"".join(pending))
                pending = []
                self._rotate()
                size = 0
            pending.append(entry)
            size += len(entry)
        self._write(b"".join(pending))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)

    def _rotate(self) -> None:
        if self.max_file < 2:
            os.ftruncate(self._fd, 0)
            self._size = 0
            return
        os.close(self._fd)
        for n in range(self.max_file - 1, 0, -1):
            src = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
            dst = self.path.with_name(f"{self.path.name}.{n}")
            try:
                os.replace(src, dst)
            except FileNotFoundError:
                pass
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o640)
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class JsonFileReader:
    """Reads a json-file log set (rotated files first, oldest to newest)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def files(self) -> list[Path]:
        rotated: list[tuple[int, Path]] = []
        prefix = self.path.name + "."
        try:
            for entry in self.path.parent.iterdir():
                suffix = entry.name[len(prefix):]
                if entry.name.startswith(prefix) and suffix.isdigit():
                    rotated.append((int(suffix), entry))
        except FileNotFoundError:
            return []
        ordered = [p for _, p in sorted(rotated, reverse=True)]
        if self.path.exists():
            ordered.append(self.path)
        return ordered

    def read(self, options: ReadOptions) -> AsyncIterator[LogMessage]:
        return _flatten(self.read_batches(replace(options, stamps=True)))

    def read_batches(self, options: ReadOptions) -> AsyncIterator[LogBatch]:
        """Like :meth:`read`, in batches (one per block read) so callers can write in bulk:
        lists of messages for small files, :class:`LogColumns` for large ones."""
        # Open now, not on first iteration: the snapshot must be taken synchronously so
        # that a follower subscribing in the same step sees every line exactly once.
        opened: list[tuple[int, int]] = []
        for path in self.files():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            opened.append((fd, os.fstat(fd).st_size))
        return self._iterate(opened, options)

    async def _iterate(self, opened: list[tuple[int, int]],
                       options: ReadOptions) -> AsyncIterator[LogBatch]:
        try:
            if options.tail is not None and options.tail <= 0:
                return
            starts = (_tail_starts(opened, options.tail) if options.tail is not None
                      else [(fd, 0, size) for fd, size in opened])
            since, until = options.since_ns, options.until_ns
            for fd, start, end in starts:
                if end - start >= COLUMNS_MIN:
                    stamps = options.stamps or bool(since or until)
                    async for columns in _columns_range(fd, start, end, stamps):
                        if since:
                            recent = columns.at_or_after(since)
                            if not recent.all():
                                columns = columns.select(recent)
                        if until and len(columns):
                            late = columns.after(until)
                            if late[-1]:
                                columns = columns.select(~late)
                                if len(columns):
                                    yield columns
                                return
                        if len(columns):
                            yield columns
                    continue
                async for batch in _parse_range(fd, start, end):
                    if since:
                        batch = [m for m in batch if m.time_ns >= since]
                    if until and batch and batch[-1].time_ns > until:
                        kept = [m for m in batch if m.time_ns <= until]
                        if kept:
                            yield kept
                        return
                    if batch:
                        yield batch
        finally:
            for fd, _ in opened:
                os.close(fd)


async def _flatten(batches: AsyncIterator[LogBatch]) -> AsyncIterator[LogMessage]:
    async for batch in batches:
        for message in (batch if isinstance(batch, list) else batch.messages()):
            yield message


def _tail_starts(opened: list[tuple[int, int]], lines: int) -> list[tuple[int, int, int]]:
    """(fd, start, end) ranges holding the last ``lines`` lines, oldest first."""
    ranges: list[tuple[int, int, int]] = []
    remaining = lines
    for fd, size in reversed(opened):
        start, found = _scan_back(fd, size, remaining)
        ranges.append((fd, start, size))
        remaining -= found
        if remaining <= 0:
            break
    ranges.reverse()
    return ranges


def _scan_back(fd: int, size: int, lines: int) -> tuple[int, int]:
    """Offset where the last ``lines`` lines of the file start, and how many were found."""
    newlines = 0
    pos = size
    while pos > 0:
        block_start = max(0, pos - BLOCK)
        data = os.pread(fd, pos - block_start, block_start)
        index = len(data)
        while True:
            index = data.rfind(b"\n", 0, index)
            if index < 0:
                break
            absolute = block_start + index
            if absolute == size - 1:
                continue  # the terminator of the last line, not a separator
            newlines += 1
            if newlines == lines:
                return absolute + 1, lines
        pos = block_start
    return 0, newlines + (1 if size > 0 else 0)


async def _parse_range(fd: int, start: int, end: int) -> AsyncIterator[list[LogMessage]]:
    pending = b""
    offset = start
    while offset < end:
        chunk = os.pread(fd, min(BLOCK, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        batch = [m for m in map(decode_entry, complete) if m is not None]
        if batch:
            yield batch
        await asyncio.sleep(0)
    if pending:
        message = decode_entry(pending)
        if message is not None:
            yield [message]


async def _columns_range(fd: int, start: int, end: int,
                         stamps: bool) -> AsyncIterator[LogColumns]:
    """Large ranges: blocks of whole lines decoded column-wise in a worker thread, one block
    ahead of the consumer (block k+1 is decoded while block k is framed and sent), so the
    event loop keeps answering other clients meanwhile."""
    from runtime.logs.columns import decode_lines

    pending = b""
    offset = start
    ahead: asyncio.Future[LogColumns] | None = None
    try:
        while offset < end:
            chunk = os.pread(fd, min(COLUMNS_BLOCK, end - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                pending += chunk
                continue
            block, pending = pending + chunk[:cut], chunk[cut:]
            # numpy lets go of the GIL for most of the decoding
            decoding = asyncio.ensure_future(
                asyncio.to_thread(decode_lines, block, stamps, decode_entry))
            previous, ahead = ahead, decoding
            if previous is not None:
                yield await previous
        if ahead is not None:
            previous, ahead = ahead, None
            yield await previous
    finally:
        if ahead is not None:
            ahead.cancel()
    if pending:
        yield decode_lines(pending + b"\n", stamps, decode_entry)


def decode_entry(raw: bytes) -> LogMessage | None:
    if not raw.strip():
        return None
    try:
        entry = json.loads(raw)
        return LogMessage(stream=entry.get("stream", "stdout"),
                          line=entry.get("log", "").encode(),
                          time_ns=parse_time(entry["time"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=64)
def _day_seconds(date: str) -> int:
    days = datetime(int(date[0:4]), int(date[5:7]), int(date[8:10])).toordinal()
    return (days - _EPOCH_ORDINAL) * 86400


def parse_time(value: str) -> int:
    """Fast path for the UTC timestamps dockerd writes; anything else via parse_rfc3339."""
    if len(value) >= 20 and value[-1] == "Z" and value[10] == "T" and value[19] in ".Z":
        seconds = (_day_seconds(value[:10]) + int(value[11:13]) * 3600
                   + int(value[14:16]) * 60 + int(value[17:19]))
        frac = value[20:-1]
        return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)
    return parse_rfc3339(value)


_parse_time = parse_time  # the name the tests know

__all__ = ["parse_time", "JsonFileDriver", "JsonFileReader", "encode_entry", "encode_entries", "decode_entry",
           "encode_string"]
