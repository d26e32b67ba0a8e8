from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from runtime.archive.writer import tar_directory
from runtime.storage.overlay import OverlayLayerStore, compact_lowerdirs
from runtime.storage.snapshots import is_mounted, perform_mount, unmount
from tests.runtime.archive.tarbuild import build, reg
from tests.runtime.storage.layer_suite import BASE, TOP, LayerStoreSuite


class TestOverlayLayerStore(LayerStoreSuite):
    make = staticmethod(lambda tmp: OverlayLayerStore(tmp / "overlay2"))


@pytest.fixture
def store(tmp_path: Path) -> OverlayLayerStore:
    return OverlayLayerStore(tmp_path / "overlay2")


def test_layout_and_reopen(store: OverlayLayerStore, tmp_path: Path) -> None:
    base = store.register([BASE], None)
    link_dir = store.root / "l"
    (link,) = os.listdir(link_dir)
    assert len(link) == 26 and (link_dir / link).resolve() == base.diff_dir.resolve()
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    reopened = OverlayLayerStore(tmp_path / "overlay2")
    assert reopened.get(base.chain_id) == base


def test_mount_shows_layers_and_whiteouts_and_commit_captures_changes(store: OverlayLayerStore) -> None:
    base = store.register([BASE], None)
    top = store.register([TOP], base.chain_id)
    mount = store.prepare("c1", top.chain_id)
    rootfs = store.merged_dir("c1")
    perform_mount(mount, rootfs)
    try:
        assert is_mounted(rootfs)
        assert (rootfs / "etc/hostname").read_text() == "box\n"
        assert not (rootfs / "etc/os-release").exists()  # whited out by the top layer
        (rootfs / "bin/sh").unlink()
        (rootfs / "new").write_text("n")
    finally:
        unmount(rootfs)
    assert not is_mounted(rootfs)
    diff = b"".join(tar_directory(store.upper_dir("c1")))
    committed = store.register([diff], top.chain_id)
    mount2 = store.prepare("c2", committed.chain_id)
    perform_mount(mount2, store.merged_dir("c2"))
    try:
        names = sorted(os.listdir(store.merged_dir("c2")))
        assert names == ["bin", "etc", "new"] and os.listdir(store.merged_dir("c2") / "bin") == []
    finally:
        unmount(store.merged_dir("c2"))


def test_remove_unmounts_first(store: OverlayLayerStore) -> None:
    base = store.register([BASE], None)
    perform_mount(store.prepare("c", base.chain_id), store.merged_dir("c"))
    merged = store.merged_dir("c")
    store.remove("c")
    assert not is_mounted(merged) and not merged.exists()
    assert (base.diff_dir / "etc/os-release").exists()


def test_many_layers_fall_back_to_relative_lowerdirs(store: OverlayLayerStore) -> None:
    parent = None
    for i in range(100):
        parent = store.register([build([reg(f"f{i}", str(i).encode())])], parent).chain_id
    mount = store.prepare("deep", parent)
    assert mount.chdir == str(store.root) and len(mount.data) < 4096
    perform_mount(mount, store.merged_dir("deep"))
    try:
        assert (store.merged_dir("deep") / "f0").read_text() == "0"
        assert (store.merged_dir("deep") / "f99").read_text() == "99"
    finally:
        unmount(store.merged_dir("deep"))


def test_compact_lowerdirs_uses_the_stores_short_form_only_when_needed(
        store: OverlayLayerStore) -> None:
    parent = None
    for i in range(100):
        parent = store.register([build([reg(f"f{i}", str(i).encode())])], parent).chain_id
    assert parent is not None
    store.prepare("c", parent)
    upper, work = str(store.upper_dir("c")), str(store.upper_dir("c").parent / "work")
    diffs = [str(d) for d in store.lowerdirs(parent)]
    # shallow: the diff dirs themselves
    assert compact_lowerdirs(diffs[-3:], upper, work) == (tuple(diffs[-3:]), None)
    # deep: exactly the lowerdirs and chdir of the store's own mount description
    lowerdirs, chdir = compact_lowerdirs(diffs, upper, work)
    mount = store.mounts("c")
    assert chdir == mount.chdir == str(store.root)
    assert mount.options[0] == "lowerdir=" + ":".join(lowerdirs)
    assert all((store.root / d).resolve() == Path(diff).resolve()
               for d, diff in zip(lowerdirs, diffs, strict=True))
    # just too deep for the diff dirs: absolute l/ links, no chdir
    fixed = len(f",upperdir={upper},workdir={work}")
    n = next(n for n in range(1, 100) if len("lowerdir=" + ":".join(diffs[:n])) + fixed >= 4096)
    lowerdirs, chdir = compact_lowerdirs(diffs[:n], upper, work)
    assert chdir is None and len(lowerdirs) == n
    assert all(Path(d).parent == store.root / "l" and Path(d).resolve() == Path(diff).resolve()
               for d, diff in zip(lowerdirs, diffs, strict=False))


def test_compact_lowerdirs_leaves_paths_it_cannot_vouch_for(
        store: OverlayLayerStore, tmp_path: Path) -> None:
    foreign = tuple(str(tmp_path / ("x" * 60) / f"layer{i}") for i in range(80))
    assert compact_lowerdirs(foreign, "/u", "/w") == (foreign, None)
    parent = None
    for i in range(80):
        parent = store.register([build([reg(f"f{i}", str(i).encode())])], parent).chain_id
    assert parent is not None
    diffs = tuple(str(d) for d in store.lowerdirs(parent))
    (link,) = [n for n in os.listdir(store.root / "l")
               if os.readlink(store.root / "l" / n) == os.path.relpath(diffs[5], store.root / "l")]
    os.unlink(store.root / "l" / link)  # a broken store: keep the long form, let mount fail
    assert compact_lowerdirs(diffs, "/u", "/w") == (diffs, None)
