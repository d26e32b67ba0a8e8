"""The LayerStore contract (runtime.storage.snapshots), for every implementation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.archive.errors import DigestMismatch
from runtime.errors import Conflict, NotFound
from runtime.storage.digest import chain_id
from runtime.storage.snapshots import LayerStore
from tests.runtime.archive.tarbuild import build, dir_, reg


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


BASE = build([dir_("etc"), reg("etc/os-release", b"ID=test\n"), reg("bin/sh", b"#!", mode=0o755)])
TOP = build([reg("etc/.wh.os-release"), reg("etc/hostname", b"box\n")])


class LayerStoreSuite:
    make: Callable[[Path], LayerStore]

    @pytest.fixture
    def store(self, tmp_path: Path) -> LayerStore:
        return self.make(tmp_path)

    def test_register_keys_by_chain_id(self, store: LayerStore) -> None:
        base = store.register([BASE], None)
        assert base.diff_id == sha(BASE) == base.chain_id and base.parent is None
        assert base.size == len(b"ID=test\n") + 2
        top = store.register([TOP], base.chain_id)
        assert top.chain_id == chain_id(base.chain_id, sha(TOP)) and top.parent == base.chain_id
        assert store.lowerdirs(top.chain_id) == [top.diff_dir, base.diff_dir]
        assert store.get(top.chain_id) == top and store.exists(base.chain_id)
        assert {layer.chain_id for layer in store.layers()} == {base.chain_id, top.chain_id}

    def test_register_is_idempotent(self, store: LayerStore) -> None:
        a = store.register([BASE], None)
        b = store.register([BASE[:100], BASE[100:]], None)
        assert a == b and len(store.layers()) == 1

    def test_expected_diff_id_is_enforced(self, store: LayerStore) -> None:
        with pytest.raises(DigestMismatch):
            store.register([BASE], None, expected_diff_id=sha(b"other"))
        assert store.layers() == []

    def test_unknown_parent(self, store: LayerStore) -> None:
        with pytest.raises(NotFound):
            store.register([BASE], sha(b"missing"))
        with pytest.raises(NotFound):
            store.get(sha(b"missing"))

    def test_tar_stream_gives_back_the_exact_bytes(self, store: LayerStore) -> None:
        padded = BASE + bytes(4096)
        layer = store.register([padded], None)
        assert b"".join(store.tar_stream(layer.chain_id)) == padded
        assert layer.tar_size == len(padded)

    def test_writable_layers(self, store: LayerStore) -> None:
        base = store.register([BASE], None)
        m = store.prepare("c1", base.chain_id)
        assert m.type == "overlay"
        assert store.mounts("c1") == m
        assert store.upper_dir("c1").is_dir() and store.merged_dir("c1").is_dir()
        with pytest.raises(Conflict):
            store.prepare("c1", base.chain_id)
        store.prepare("scratch", None)
        assert store.writable_layers() == {"c1": base.chain_id, "scratch": None}
        store.remove("c1")
        with pytest.raises(NotFound):
            store.mounts("c1")
        with pytest.raises(NotFound):
            store.remove("c1")

    def test_gc_keeps_what_images_and_containers_need(self, store: LayerStore) -> None:
        base = store.register([BASE], None)
        top = store.register([TOP], base.chain_id)
        other = store.register([build([reg("x")])], None)
        store.prepare("c", other.chain_id)
        assert store.gc({top.chain_id}) == []  # top keeps base, the container keeps other
        store.remove("c")
        assert [layer.chain_id for layer in store.gc({top.chain_id})] == [other.chain_id]
        removed = {layer.chain_id for layer in store.gc(set())}
        assert removed == {base.chain_id, top.chain_id}
        assert store.layers() == []
