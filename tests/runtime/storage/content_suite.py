"""The ContentStore contract, run against every implementation (containerd's testsuite idea)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from runtime.errors import InvalidParameter
from runtime.storage.content import BlobNotFound, ContentStore, DigestMismatchError, put


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ContentStoreSuite:
    make: Callable[..., ContentStore]

    @pytest.fixture
    def store(self, tmp_path) -> ContentStore:  # type: ignore[no-untyped-def]
        return self.make(tmp_path)

    def test_ingest_hashes_while_writing(self, store: ContentStore) -> None:
        w = store.writer()
        w.write(b"hello ")
        w.write(b"world")
        assert w.size == 11 and w.digest == sha(b"hello world")
        assert w.commit(sha(b"hello world"), 11) == sha(b"hello world")
        assert store.read(sha(b"hello world")) == b"hello world"
        assert store.size(sha(b"hello world")) == 11
        with store.open(sha(b"hello world")) as f:
            assert f.read() == b"hello world"
        assert store.list() == [sha(b"hello world")]

    def test_commit_rejects_wrong_digest_and_keeps_nothing(self, store: ContentStore) -> None:
        w = store.writer()
        w.write(b"data")
        with pytest.raises(DigestMismatchError):
            w.commit(sha(b"other"))
        assert store.list() == []
        assert not store.exists(sha(b"data"))

    def test_commit_rejects_wrong_size(self, store: ContentStore) -> None:
        with pytest.raises(DigestMismatchError):
            w = store.writer()
            w.write(b"data")
            w.commit(None, 5)
        assert store.list() == []

    def test_abort_and_duplicates(self, store: ContentStore) -> None:
        w = store.writer()
        w.write(b"gone")
        w.abort()
        assert store.list() == []
        assert put(store, b"x") == put(store, b"x") == sha(b"x")
        assert store.list() == [sha(b"x")]

    def test_missing_and_invalid_digests(self, store: ContentStore) -> None:
        with pytest.raises(BlobNotFound):
            store.read(sha(b"nope"))
        with pytest.raises(BlobNotFound):
            store.delete(sha(b"nope"))
        with pytest.raises(InvalidParameter):
            store.read("sha256:../../etc/passwd")
        with pytest.raises(InvalidParameter):
            store.exists("md5:abc")

    def test_delete(self, store: ContentStore) -> None:
        d = put(store, b"bye")
        store.delete(d)
        assert not store.exists(d) and store.list() == []
