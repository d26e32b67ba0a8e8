"""A content store: immutable blobs addressed by their digest.

Built, like containerd's, from small roles a caller can ask for separately:

* :class:`Provider` reads blobs;
* :class:`Ingester` hands out a :class:`ContentWriter`, which hashes while it is written
  and checks the digest (and size) *in* :meth:`ContentWriter.commit`: a blob never becomes
  visible under a digest it does not have;
* :class:`Manager` lists and deletes.

:class:`FileContentStore` keeps blobs in ``<root>/blobs/sha256/<hex>`` and partial writes in
``<root>/ingest/``; :class:`MemoryContentStore` is the in-memory fake. Both pass the shared
suite in ``tests/runtime/storage/content_suite.py``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Protocol

from runtime.errors import InvalidParameter, NotFound
from runtime.statefile import fsync_dir
from runtime.storage.digest import hex_of, validate


class BlobNotFound(NotFound):
    def __init__(self, digest: str) -> None:
        super().__init__(f"content digest {digest}: not found")


class DigestMismatchError(InvalidParameter):
    pass


class ContentWriter(Protocol):
    """An open ingest. Write, then :meth:`commit` (or :meth:`abort`)."""

    def write(self, data: bytes) -> None: ...

    @property
    def size(self) -> int: ...

    @property
    def digest(self) -> str:
        """Digest of what was written so far."""

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        """Make the blob readable under its digest and return it. Raises
        :class:`DigestMismatchError` (and discards the data) when ``expected`` or ``size``
        do not match. Committing content that already exists is not an error."""

    def abort(self) -> None: ...


class Provider(Protocol):
    def exists(self, digest: str) -> bool: ...

    def read(self, digest: str) -> bytes:
        """The whole blob (for configs and manifests). Raises BlobNotFound."""

    def open(self, digest: str) -> BinaryIO:
        """A reader for large blobs. Raises BlobNotFound."""

    def size(self, digest: str) -> int: ...


class Ingester(Protocol):
    def writer(self) -> ContentWriter: ...


class Manager(Protocol):
    def list(self) -> list[str]: ...

    def delete(self, digest: str) -> None:
        """Remove a blob. Raises BlobNotFound."""


class ContentStore(Provider, Ingester, Manager, Protocol):
    """All roles together."""


def put(store: Ingester, data: bytes, expected: str | None = None) -> str:
    """Ingest ``data`` in one call and return its digest."""
    w = store.writer()
    try:
        w.write(data)
        return w.commit(expected, len(data))
    except BaseException:
        w.abort()
        raise


def _check(digest: str, size: int, expected: str | None, expected_size: int | None) -> None:
    if expected_size is not None and size != expected_size:
        raise DigestMismatchError(f"unexpected commit size {size}, expected {expected_size}")
    if expected is not None and digest != validate(expected):
        raise DigestMismatchError(f"unexpected commit digest {digest}, expected {expected}: failed precondition")


class _HashingWriter:
    """What both writers share: the running digest and size of what was written."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0

    def _account(self, data: bytes) -> None:
        self._hash.update(data)
        self._size += len(data)

    @property
    def size(self) -> int:
        return self._size

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _FileWriter(_HashingWriter):
    def __init__(self, store: FileContentStore) -> None:
        super().__init__()
        self._store = store
        fd, name = tempfile.mkstemp(prefix="ingest-", dir=store.ingest_dir)
        self._file = os.fdopen(fd, "wb")
        self._path = Path(name)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._account(data)

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        digest = self.digest
        try:
            _check(digest, self._size, expected, size)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._path, 0o444)
            target = self._store.blob_path(digest)
            os.replace(self._path, target)
            fsync_dir(target.parent)
        except BaseException:
            self.abort()
            raise
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            self._path.unlink()
        except FileNotFoundError:
            pass


class FileContentStore:
    """Blobs on disk under ``root`` (see module docs for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.ingest_dir.iterdir():  # writes cut short by a crash
            stale.unlink()

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / hex_of(validate(digest))

    def exists(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def writer(self) -> ContentWriter:
        return _FileWriter(self)

    def list(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self.blob_dir.iterdir() if not p.name.startswith("."))

    def delete(self, digest: str) -> None:
        try:
            self.blob_path(digest).unlink()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None


class _MemoryWriter(_HashingWriter):
    def __init__(self, store: MemoryContentStore) -> None:
        super().__init__()
        self._store = store
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._chunks.append(bytes(data))
        self._account(data)

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        digest = self.digest
        try:
            _check(digest, self._size, expected, size)
        except BaseException:
            self.abort()
            raise
        with self._store._lock:
            self._store._blobs[digest] = b"".join(self._chunks)
        return digest

    def abort(self) -> None:
        self._chunks.clear()


class MemoryContentStore:
    """In-memory fake with the same contract."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def exists(self, digest: str) -> bool:
        return validate(digest) in self._blobs

    def read(self, digest: str) -> bytes:
        try:
            return self._blobs[validate(digest)]
        except KeyError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str) -> BinaryIO:
        import io

        return io.BytesIO(self.read(digest))

    def size(self, digest: str) -> int:
        return len(self.read(digest))

    def writer(self) -> ContentWriter:
        return _MemoryWriter(self)

    def list(self) -> list[str]:
        return sorted(self._blobs)

    def delete(self, digest: str) -> None:
        with self._lock:
            if self._blobs.pop(validate(digest), None) is None:
                raise BlobNotFound(digest)


