"""A streaming tar reader that hashes and (optionally) records every byte it consumes.

Unlike :mod:`tarfile`, it never seeks, parses headers with a few slices, and hands file
data straight from its read buffer to ``os.write``. Every byte of the stream, including
padding and anything after the end-of-archive marker, goes through one SHA-256, so
``digest`` is the layer's diff ID. A :class:`RawSink` sees every byte that is *not* file
content written to disk, which is what :mod:`runtime.archive.tarsplit` needs to rebuild
the exact stream later.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from runtime.archive import tarheader as th
from runtime.archive.errors import MalformedArchive

MAX_SPECIAL_SIZE = 1 << 20  # PAX / GNU long-name payloads, as Go's archive/tar limits them

_HEADER_ONLY = frozenset((th.LNK, th.SYM, th.CHR, th.BLK, th.DIR, th.FIFO))


class RawSink(Protocol):
    def raw(self, data: bytes) -> None:
        """Bytes of the stream that are not regular-file content written to disk."""


_BACKGROUND_AFTER = 4 << 20  # bytes hashed inline before the hash moves to its own thread
_HASH_QUEUE = 32
_HASH_BATCH = 256 << 10


class StreamHash:
    """SHA-256 of a stream, computed in a helper thread once the stream is large, so the
    hash (about a third of a core at extraction speed) overlaps with the extraction's
    system calls instead of adding to them. ``hexdigest`` waits for the helper."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._seen = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pending: list[bytes] = []
        self._pending_size = 0

    def update(self, data: bytes) -> None:
        if self._queue is None:
            self._hash.update(data)
            self._seen += len(data)
            if self._seen >= _BACKGROUND_AFTER and not self._closed:
                self._queue = queue.Queue(_HASH_QUEUE)
                self._thread = threading.Thread(target=self._work, name="tar-hash", daemon=True)
                self._thread.start()
            return
        if len(data) >= _HASH_BATCH:
            self._flush()
            self._queue.put(data)
            return
        # small pieces (headers between files) go in batches: one hand-off per batch
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _HASH_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._queue is not None:
            self._queue.put(b"".join(self._pending))
            self._pending.clear()
            self._pending_size = 0

    def _work(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def close(self) -> None:
        """Stop the helper (idempotent); the digest is complete afterwards."""
        self._closed = True
        if self._queue is not None and self._thread is not None:
            self._flush()
            self._queue.put(None)
            self._thread.join()
            self._queue = None
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


class TarReader:
    """Iterate the members of an uncompressed tar stream given as byte chunks."""

    def __init__(self, chunks: Iterable[bytes], sink: RawSink | None = None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf: bytes = b""
        self._pos = 0
        self._hash = StreamHash()
        self._sink = sink
        self._remaining = 0  # unread content bytes of the current member
        self._padding = 0
        self._ended = False
        self._eof = False
        self.consumed = 0

    # -- low level -------------------------------------------------------------------------

    def _fetch(self) -> bool:
        """Append the next chunk to the buffer; False at end of input."""
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                break
        else:
            self._eof = True
            return False
        self._hash.update(chunk)
        self.consumed += len(chunk)
        if self._pos >= len(self._buf):
            self._buf = bytes(chunk)
        else:
            self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at end of input)."""
        while len(self._buf) - self._pos < n:
            if not self._fetch():
                break
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def _take_exact(self, n: int) -> bytes:
        data = self._take(n)
        if len(data) != n:
            raise MalformedArchive("unexpected EOF")
        return data

    def _record(self, data: bytes) -> None:
        if self._sink is not None and data:
            self._sink.raw(data)

    def _skip(self, n: int, record: bool = True) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._fetch():
                    raise MalformedArchive("unexpected EOF")
                continue
            step = min(avail, n)
            if record:
                self._record(self._buf[self._pos : self._pos + step])
            self._pos += step
            n -= step

    # -- members ---------------------------------------------------------------------------

    def next(self) -> th.TarEntry | None:
        """Advance to the next member (skipping unread content); None at end of archive."""
        if self._ended:
            return None
        self._skip(self._remaining)
        self._skip(self._padding)
        self._remaining = self._padding = 0
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            block = self._take(th.BLOCK)
            if not block:
                self._ended = True
                return None
            if len(block) != th.BLOCK:
                raise MalformedArchive("unexpected EOF")
            self._record(block)
            if block == th.ZERO_BLOCK:
                second = self._take(th.BLOCK)
                self._record(second)
                if second and second != th.ZERO_BLOCK:
                    raise MalformedArchive("archive/tar: invalid tar header")
                self._ended = True
                return None
            raw = th.parse_block(block)
            if raw.type in (th.PAX, th.PAX_GLOBAL, th.GNU_LONGNAME, th.GNU_LONGLINK):
                if raw.size > MAX_SPECIAL_SIZE:
                    raise MalformedArchive("archive/tar: header field too long")
                payload = self._take_exact(raw.size)
                self._record(payload)
                self._skip(-raw.size % th.BLOCK)
                if raw.type == th.PAX:
                    pax.update(th.parse_pax(payload))
                elif raw.type == th.GNU_LONGNAME:
                    long_name = payload.rstrip(b"\x00")
                elif raw.type == th.GNU_LONGLINK:
                    long_link = payload.rstrip(b"\x00")
                # global PAX headers are ignored, as dockerd does
                continue
            if raw.type == th.GNU_SPARSE:
                raise MalformedArchive("unhandled tar header type: GNU sparse file")
            entry = th.build_entry(raw, pax, long_name, long_link)
            size = 0 if entry.type in _HEADER_ONLY else entry.size
            self._remaining = size
            self._padding = -size % th.BLOCK
            return entry

    def data(self, limit: int | None = None) -> bytes:
        """The whole content of the current member (recorded as raw bytes)."""
        n = self._remaining
        if limit is not None and n > limit:
            raise MalformedArchive("archive member too large")
        data = self._take_exact(n)
        self._record(data)
        self._remaining = 0
        return data

    def chunks(self, record: bool = True) -> Iterator[bytes]:
        """The current member's content in buffer-sized pieces."""
        while self._remaining > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._fetch():
                    raise MalformedArchive("unexpected EOF")
                continue
            step = min(avail, self._remaining)
            piece = self._buf[self._pos : self._pos + step]
            self._pos += step
            self._remaining -= step
            if record:
                self._record(piece)
            yield piece

    def copy_to_fd(self, fd: int) -> int:
        """Write the current member's content to ``fd`` (not recorded); returns its size."""
        total = self._remaining
        while self._remaining > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._fetch():
                    raise MalformedArchive("unexpected EOF")
                continue
            step = min(avail, self._remaining)
            view = memoryview(self._buf)[self._pos : self._pos + step]
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self._pos += step
            self._remaining -= step
        return total

    def finish(self) -> str:
        """Consume the rest of the input (recorded, hashed) and return ``sha256:<hex>``."""
        while self.next() is not None:
            pass
        self._record(self._buf[self._pos :])
        self._pos = len(self._buf)
        while self._fetch():
            self._record(self._buf)
            self._pos = len(self._buf)
        return self.digest

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        """Stop the hashing helper thread (call when done, also after an error)."""
        self._hash.close()
