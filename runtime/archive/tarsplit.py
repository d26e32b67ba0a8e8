"""Rebuild a layer's original tar stream, byte for byte, from the unpacked tree.

An image's ID covers its layers' diff IDs (SHA-256 of each uncompressed layer tar), so
``docker save`` must reproduce the exact bytes that were loaded. dockerd keeps
``tar-split`` metadata for that; this module does the same job with its own format:

* while unpacking, :class:`TarSplitRecorder` receives every byte of the stream that is not
  regular-file content (headers, padding, trailing zeros) and, for each file, a reference
  ``(file id, size)``. The log is zlib-compressed; headers compress to almost nothing.
* :func:`reassemble` replays the log, reading file content from the tree.

If a file with recorded content is later removed or replaced by the same archive (a
duplicate member, a whiteout in the same layer), the recorder moves it into ``stash_dir``
instead of deleting it, so the content stays available.

Log records: ``R <u64 len> <bytes>`` raw bytes, ``F <u32 id> <u64 size>`` file content,
``E`` end. The file table maps ids to ``(base, path)``: base 0 is the tree, 1 the stash.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from runtime.archive.errors import ArchiveError, DigestMismatch
from runtime.archive.reader import StreamHash
from runtime.archive.rootfd import DIR_FLAGS, RootFD

LOG_MAGIC = b"PYDTS1\n"
FILES_MAGIC = b"PYDTF1\n"
_FLUSH_AT = 1 << 20
_READ = 1 << 20


class TarSplitRecorder:
    """Records a tar stream during extraction (see module docs). Use as a context manager
    or call :meth:`close`; the two output files are complete only after close."""

    def __init__(self, log_path: Path, files_path: Path, stash_dir: Path) -> None:
        self._log = open(log_path, "wb")
        self._log.write(LOG_MAGIC)
        self._files_path = files_path
        self._z = zlib.compressobj(1)
        self._pending = bytearray()
        self._paths: list[tuple[int, str]] = []
        self._live: dict[str, int] = {}
        self._stash_dir = stash_dir
        self._stash_fd: int | None = None
        self._stash_count = 0

    def __enter__(self) -> TarSplitRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, data: bytes) -> None:
        out = self._z.compress(data)
        if out:
            self._log.write(out)

    def _flush_raw(self) -> None:
        if self._pending:
            self._emit(b"R" + struct.pack(">Q", len(self._pending)))
            self._emit(bytes(self._pending))
            self._pending.clear()

    def raw(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _FLUSH_AT:
            self._flush_raw()

    def file(self, path: str, size: int) -> None:
        self._flush_raw()
        file_id = len(self._paths)
        self._paths.append((0, path))
        self._live[path] = file_id
        self._emit(b"F" + struct.pack(">IQ", file_id, size))

    def claims(self, path: str) -> bool:
        if path in self._live:
            return True
        prefix = path + "/"
        return any(p.startswith(prefix) for p in self._live)

    def stash(self, parent_fd: int, name: str, path: str) -> None:
        if self._stash_fd is None:
            self._stash_dir.mkdir(mode=0o700, exist_ok=True)
            self._stash_fd = os.open(self._stash_dir, DIR_FLAGS)
        slot = str(self._stash_count)
        self._stash_count += 1
        os.rename(name, slot, src_dir_fd=parent_fd, dst_dir_fd=self._stash_fd)
        prefix = path + "/"
        for live_path, file_id in list(self._live.items()):
            if live_path == path or live_path.startswith(prefix):
                self._paths[file_id] = (1, slot + live_path[len(path) :])
                del self._live[live_path]

    def close(self) -> None:
        if self._log.closed:
            return
        try:
            self._flush_raw()
            self._emit(b"E")
            self._log.write(self._z.flush())
            self._log.flush()
            os.fsync(self._log.fileno())
        finally:
            self._log.close()
            if self._stash_fd is not None:
                os.close(self._stash_fd)
        with open(self._files_path, "wb") as f:
            f.write(FILES_MAGIC)
            for base, path in self._paths:
                raw = os.fsencode(path)
                f.write(struct.pack(">BI", base, len(raw)) + raw)
            f.flush()
            os.fsync(f.fileno())


def _read_table(files_path: Path) -> list[tuple[int, str]]:
    data = files_path.read_bytes()
    if not data.startswith(FILES_MAGIC):
        raise ArchiveError(f"corrupt tar-split file table {files_path}")
    pos = len(FILES_MAGIC)
    table: list[tuple[int, str]] = []
    while pos < len(data):
        base, length = struct.unpack_from(">BI", data, pos)
        pos += 5
        table.append((base, os.fsdecode(data[pos : pos + length])))
        pos += length
    return table


class _LogReader:
    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        if self._f.read(len(LOG_MAGIC)) != LOG_MAGIC:
            self._f.close()
            raise ArchiveError(f"corrupt tar-split log {path}")
        self._z = zlib.decompressobj()
        self._buf = b""
        self._pos = 0
        self._tail = b""

    def close(self) -> None:
        self._f.close()

    def _more(self) -> bool:
        # bounded output per step: headers compress extremely well
        if self._z.unconsumed_tail:
            data = self._z.decompress(self._z.unconsumed_tail, _READ)
        else:
            raw = self._f.read(_READ)
            data = self._z.decompress(raw, _READ) if raw else self._z.flush()
            if not raw and not data:
                return False
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return True

    def take(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._more():
                raise ArchiveError("truncated tar-split log")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out


def reassemble(
    log_path: Path,
    files_path: Path,
    tree: Path,
    stash_dir: Path,
    expected_digest: str | None = None,
) -> Iterator[bytes]:
    """Yield the original tar stream. With ``expected_digest`` ("sha256:<hex>") the output
    is verified and :class:`DigestMismatch` raised at the end if it differs."""
    table = _read_table(files_path)
    log = _LogReader(log_path)
    digest = StreamHash()  # in a helper thread past a few MB, off the stream's path
    roots = [RootFD(os.open(tree, DIR_FLAGS))]
    try:
        stash_fd = os.open(stash_dir, DIR_FLAGS) if stash_dir.is_dir() else None
        roots.append(RootFD(stash_fd) if stash_fd is not None else roots[0])
        while True:
            kind = log.take(1)
            if kind == b"E":
                break
            if kind == b"R":
                (length,) = struct.unpack(">Q", log.take(8))
                while length > 0:
                    piece = log.take(min(length, _READ))
                    length -= len(piece)
                    digest.update(piece)
                    yield piece
            elif kind == b"F":
                file_id, size = struct.unpack(">IQ", log.take(12))
                base, path = table[file_id]
                for piece in _file_content(roots[base], path, size):
                    digest.update(piece)
                    yield piece
            else:
                raise ArchiveError("corrupt tar-split log")
    finally:
        digest.close()
        log.close()
        for r in {id(r): r for r in roots}.values():
            r.close()
            os.close(r.root.fd)
    if expected_digest is not None and "sha256:" + digest.hexdigest() != expected_digest:
        raise DigestMismatch(
            f"failed to verify layer: expected {expected_digest}, got sha256:{digest.hexdigest()}"
        )


def _file_content(root: RootFD, path: str, size: int) -> Iterator[bytes]:
    parent, name = root.parent_of(path)
    with root.hold(parent):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
    try:
        remaining = size
        while remaining > 0:
            piece = os.read(fd, min(remaining, _READ))
            if not piece:
                raise DigestMismatch(f"layer content changed: /{path} is shorter than recorded")
            remaining -= len(piece)
            yield piece
    finally:
        os.close(fd)
