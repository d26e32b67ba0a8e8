from __future__ import annotations

import os
from pathlib import Path

from runtime.storage.content import FileContentStore, MemoryContentStore, put
from tests.runtime.storage.content_suite import ContentStoreSuite


class TestFileContentStore(ContentStoreSuite):
    make = staticmethod(lambda tmp: FileContentStore(tmp / "content"))


class TestMemoryContentStore(ContentStoreSuite):
    make = staticmethod(lambda tmp: MemoryContentStore())


def test_file_store_layout_and_crash_leftovers(tmp_path: Path) -> None:
    store = FileContentStore(tmp_path / "c")
    d = put(store, b"blob")
    assert (tmp_path / "c/blobs/sha256" / d[7:]).read_bytes() == b"blob"
    w = store.writer()
    w.write(b"partial")  # never committed: as if the daemon died here
    assert len(os.listdir(tmp_path / "c/ingest")) == 1
    reopened = FileContentStore(tmp_path / "c")
    assert os.listdir(tmp_path / "c/ingest") == []
    assert reopened.list() == [d]
