from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from runtime.archive.writer import tar_directory
from runtime.linux.syscalls import LinuxSyscalls
from runtime.spec.model import LayerMount
from runtime.storage.overlay import OverlayLayerStore, fs_options, stack_mount
from runtime.storage.snapshots import is_mounted, perform_mount, unmount
from tests.runtime.archive.tarbuild import build, reg
from tests.runtime.storage.layer_suite import BASE, TOP, LayerStoreSuite

SC = LinuxSyscalls()


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
    perform_mount(mount, rootfs, SC)
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
    perform_mount(mount2, store.merged_dir("c2"), SC)
    try:
        names = sorted(os.listdir(store.merged_dir("c2")))
        assert names == ["bin", "etc", "new"] and os.listdir(store.merged_dir("c2") / "bin") == []
    finally:
        unmount(store.merged_dir("c2"))


def test_remove_unmounts_first(store: OverlayLayerStore) -> None:
    base = store.register([BASE], None)
    perform_mount(store.prepare("c", base.chain_id), store.merged_dir("c"), SC)
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
    perform_mount(mount, store.merged_dir("deep"), SC)
    try:
        assert (store.merged_dir("deep") / "f0").read_text() == "0"
        assert (store.merged_dir("deep") / "f99").read_text() == "99"
    finally:
        unmount(store.merged_dir("deep"))


@pytest.mark.parametrize(("lowerdirs", "options", "expected"), [
    # a rootfs without image layers: its upper directory, bound
    ((), ("index=off",), LayerMount("bind", "/c/diff", ("rbind",))),
    (("/l/2", "/l/1"), (), LayerMount("overlay", "overlay", (
        "lowerdir=/l/2:/l/1", "upperdir=/c/diff", "workdir=/c/work"))),
    # fs options follow the directories (dockerd's order), for every user of the stack
    (("/l/1",), ("index=off",), LayerMount("overlay", "overlay", (
        "lowerdir=/l/1", "upperdir=/c/diff", "workdir=/c/work", "index=off"))),
    # too long, but not a store's layers: kept as given (the mount will say what is wrong)
    (tuple(f"/{'x' * 60}/layer{i}" for i in range(80)), (), LayerMount("overlay", "overlay", (
        "lowerdir=" + ":".join(f"/{'x' * 60}/layer{i}" for i in range(80)),
        "upperdir=/c/diff", "workdir=/c/work"))),
])
def test_stack_mount_options(lowerdirs: tuple[str, ...], options: tuple[str, ...],
                             expected: LayerMount) -> None:
    assert stack_mount(lowerdirs, "/c/diff", "/c/work", options) == expected


def test_stack_mount_takes_the_hosts_fs_options_by_default() -> None:
    mount = stack_mount(("/l/1",), "/c/diff", "/c/work")
    assert mount.options[3:] == fs_options()
    assert fs_options() == (("index=off",) if os.path.exists("/sys/module/overlay/parameters/index") else ())


def test_stack_mount_uses_the_stores_short_form_only_when_needed(store: OverlayLayerStore) -> None:
    parent = None
    for i in range(100):
        parent = store.register([build([reg(f"f{i}", str(i).encode())])], parent).chain_id
    assert parent is not None
    store.prepare("c", parent)
    upper, work = str(store.upper_dir("c")), str(store.upper_dir("c").parent / "work")
    diffs = [str(d) for d in store.lowerdirs(parent)]
    # shallow: the diff dirs themselves
    assert stack_mount(diffs[-3:], upper, work).option("lowerdir") == ":".join(diffs[-3:])
    # deep: the store's own description of the layer (what a container's rootfs gets)
    mount = stack_mount(diffs, upper, work)
    assert mount == store.mounts("c") and mount.chdir == str(store.root)
    lowerdirs = str(mount.option("lowerdir")).split(":")
    assert all((store.root / d).resolve() == Path(diff).resolve()
               for d, diff in zip(lowerdirs, diffs, strict=True))
    # just too deep for the diff dirs: absolute l/ links, no chdir
    fixed = len(",".join(("", f"upperdir={upper}", f"workdir={work}", *fs_options())))
    n = next(n for n in range(1, 100) if len("lowerdir=" + ":".join(diffs[:n])) + fixed >= 4096)
    mount = stack_mount(diffs[:n], upper, work)
    lowerdirs = str(mount.option("lowerdir")).split(":")
    assert mount.chdir is None and len(lowerdirs) == n
    assert all(Path(d).parent == store.root / "l" and Path(d).resolve() == Path(diff).resolve()
               for d, diff in zip(lowerdirs, diffs, strict=False))


def test_stack_mount_leaves_paths_it_cannot_vouch_for(store: OverlayLayerStore) -> None:
    parent = None
    for i in range(80):
        parent = store.register([build([reg(f"f{i}", str(i).encode())])], parent).chain_id
    assert parent is not None
    diffs = tuple(str(d) for d in store.lowerdirs(parent))
    (link,) = [n for n in os.listdir(store.root / "l")
               if os.readlink(store.root / "l" / n) == os.path.relpath(diffs[5], store.root / "l")]
    os.unlink(store.root / "l" / link)  # a broken store: keep the long form, let mount fail
    mount = stack_mount(diffs, "/u", "/w")
    assert mount.option("lowerdir") == ":".join(diffs) and mount.chdir is None
