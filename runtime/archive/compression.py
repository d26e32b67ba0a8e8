"""Compression detection by magic bytes and streaming decompression into byte chunks.

Every unpacking path (import, load, build context, cp) reads its input through
:func:`decompressed_chunks`, so gzip, bzip2, xz and zstd are accepted everywhere, like
moby's ``DecompressStream``. Decompression is bounded per step (``max_length``) so a
compression bomb never materialises more than one chunk in memory.
"""

from __future__ import annotations

import bz2
import enum
import lzma
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from runtime.archive.errors import MalformedArchive

CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "zstd"


_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b\x08", Compression.GZIP),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
)

MAGIC_LEN = 6


class ChunkReader:
    """``read(n)`` over an iterator of byte chunks (for readers that want a file)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            self._buf = next(self._it, b"")
        if n < 0 or n >= len(self._buf):
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def detect(head: bytes) -> Compression:
    """The compression of a stream starting with ``head`` (at least 6 bytes when available)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


def raw_chunks(src: Readable, first: bytes = b"", chunk: int = CHUNK) -> Iterator[bytes]:
    """``first`` followed by ``src.read(chunk)`` until EOF."""
    if first:
        yield first
    while True:
        data = src.read(chunk)
        if not data:
            return
        yield data


def _read_head(src: Readable) -> bytes:
    head = b""
    while len(head) < MAGIC_LEN:
        more = src.read(MAGIC_LEN - len(head))
        if not more:
            break
        head += more
    return head


def decompressed_chunks(
    src: Readable, chunk: int = CHUNK, threaded: bool = True
) -> tuple[Compression, Iterator[bytes]]:
    """Sniff ``src`` and return its compression and an iterator of decompressed chunks.

    With ``threaded`` (the default), compressed input is read and inflated in a helper
    thread, overlapping with whatever consumes the chunks (zlib, bz2, lzma and zstd release
    the GIL while they work)."""
    head = _read_head(src)
    kind = detect(head)
    compressed = raw_chunks(src, head, chunk)
    if kind is Compression.NONE:
        return kind, compressed
    kind, inflated = _decompressor(kind, compressed, chunk)
    return kind, (in_thread(inflated) if threaded else inflated)


def _decompressor(kind: Compression, compressed: Iterator[bytes], chunk: int) -> tuple[Compression, Iterator[bytes]]:
    if kind is Compression.GZIP:
        from isal import isal_zlib  # ISA-L's inflate: about twice zlib's speed, same output

        return kind, _inflate(compressed, lambda: isal_zlib.decompressobj(31), chunk)
    if kind is Compression.BZIP2:
        return kind, _inflate(compressed, bz2.BZ2Decompressor, chunk)
    if kind is Compression.XZ:
        return kind, _inflate(compressed, lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), chunk)
    return kind, _unzstd(compressed, chunk)


def _decode_errors() -> tuple[type[BaseException], ...]:
    """What a broken stream raises (evaluated only when something was raised: isal is not
    loaded for this)."""
    from isal import isal_zlib

    isal_error = cast("type[BaseException]", isal_zlib.error)  # its stub says an instance
    return zlib.error, OSError, lzma.LZMAError, EOFError, ValueError, isal_error


def _inflate(compressed: Iterator[bytes], make: Callable[[], Any], chunk: int) -> Iterator[bytes]:
    """Decompress a possibly multi-member stream (concatenated gzip/bzip2/xz members).

    ``make`` returns a zlib/bz2/lzma decompressor; output is produced at most ``chunk``
    bytes at a time.
    """
    dec = make()
    is_zlib = not isinstance(dec, bz2.BZ2Decompressor | lzma.LZMADecompressor)
    fed = False
    padding_only = False
    try:
        for data in compressed:
            if padding_only:
                continue
            while data:
                if dec.eof:
                    # another member follows the previous one
                    dec = make()
                fed = True
                out = dec.decompress(data, chunk)
                # keep pulling output until the decompressor wants more input
                while True:
                    if out:
                        yield out
                    if dec.eof:
                        break
                    if is_zlib:
                        tail = dec.unconsumed_tail
                        if not tail and len(out) < chunk:
                            break
                        out = dec.decompress(tail, chunk)
                    else:
                        if dec.needs_input:
                            break
                        out = dec.decompress(b"", chunk)
                data = b""
                if dec.eof:
                    data = dec.unused_data
                    if data and not data.strip(b"\x00"):
                        # zero padding after the last member is ignored, as gzip -d does
                        padding_only = True
                        data = b""
    except _decode_errors() as exc:
        raise MalformedArchive(f"failed to decompress archive: {exc}") from exc
    if fed and not dec.eof:
        raise MalformedArchive("failed to decompress archive: unexpected EOF")


def _unzstd(compressed: Iterator[bytes], chunk: int) -> Iterator[bytes]:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise MalformedArchive("zstd-compressed archives need the zstandard package") from exc

    reader = zstandard.ZstdDecompressor().stream_reader(ChunkReader(compressed), read_across_frames=True)  # type: ignore[arg-type]
    try:
        while True:
            out = reader.read(chunk)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise MalformedArchive(f"failed to decompress archive: {exc}") from exc


_END = object()


def in_thread(source: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """Run ``source`` in a helper thread and yield its items here (bounded queue). If the
    consumer stops early, the helper stops at its next item."""
    q: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:
            q.put(exc)

    worker = threading.Thread(target=produce, name="decompress", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        # never wait for the helper: it may be blocked reading a stalled client; it sees
        # ``stop`` at its next hand-off and exits
        stop.set()
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
