"""Copy-up: the image's content at a mount point goes into a new, empty volume with its
metadata; through a real overlay view of the container's layers (whiteouts honoured,
symlinks resolved inside the rootfs, nothing followed on either side)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.errors import SystemError_
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.spec.model import LayerMount
from runtime.storage.overlay import stack_mount
from runtime.storage.snapshots import is_mounted
from runtime.volumes.copyup import check_not_file, copy_tree, populate, rootfs_view

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, overlay)")
SC = LinuxSyscalls()


def _fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def test_copy_tree_keeps_metadata(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub" / "deeper").mkdir(parents=True)
    dst.mkdir()
    f = src / "sub" / "tool"
    f.write_bytes(b"#!/bin/sh\n" * 1000)
    os.chown(f, 1234, 5678)
    os.chmod(f, 0o4755)
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    os.setxattr(f, "user.origin", b"image")
    os.link(f, src / "hard")
    os.symlink("sub/tool", src / "link")
    os.chown(src / "link", 42, 43, follow_symlinks=False)
    os.mkfifo(src / "fifo", 0o640)
    os.chmod(src / "sub" / "deeper", 0o700)
    os.utime(src / "sub", ns=(3_000_000_000, 4_000_000_000))
    os.chown(src, 1000, 1001)
    os.chmod(src, 0o750)
    s, d = _fd(src), _fd(dst)
    try:
        copy_tree(SC, s, d)
    finally:
        os.close(s)
        os.close(d)
    copied = dst / "sub" / "tool"
    st = copied.stat()
    assert copied.read_bytes() == f.read_bytes()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4755)
    assert st.st_mtime_ns == 2_000_000_000
    assert os.getxattr(copied, "user.origin") == b"image"
    assert (dst / "hard").stat().st_ino == st.st_ino
    assert os.readlink(dst / "link") == "sub/tool"
    assert os.lstat(dst / "link").st_uid == 42
    assert stat.S_ISFIFO((dst / "fifo").lstat().st_mode)
    assert stat.S_IMODE((dst / "fifo").lstat().st_mode) == 0o640
    assert stat.S_IMODE((dst / "sub" / "deeper").stat().st_mode) == 0o700
    assert (dst / "sub").stat().st_mtime_ns == 4_000_000_000
    root = dst.stat()
    assert (root.st_uid, root.st_gid, stat.S_IMODE(root.st_mode)) == (1000, 1001, 0o750)


@pytest.fixture
def layers(tmp_path: Path) -> LayerMount:
    base, top, upper, work = (tmp_path / n for n in ("base", "top", "upper", "work"))
    for d in (base / "image" / "data", base / "etc", top / "image" / "data", upper, work):
        d.mkdir(parents=True)
    (base / "image" / "data" / "kept").write_text("base")
    (base / "image" / "data" / "deleted").write_text("gone")
    (base / "etc" / "marker").write_text("inside the rootfs")
    os.mknod(top / "image" / "data" / "deleted", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (top / "image" / "data" / "added").write_text("top")
    os.symlink("/image/data", top / "data-link")
    os.symlink("/etc", top / "abs-etc")
    (top / "file").write_text("not a dir")
    return stack_mount((str(top), str(base)), str(upper), str(work))


def test_populate_through_the_overlay_view(layers: LayerMount, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    vol, etc_vol, full = (tmp_path / n for n in ("vol", "etcvol", "full"))
    for d in (vol, etc_vol, full):
        d.mkdir()
    (full / "mine").write_text("keep me")
    with rootfs_view(SC, layers, scratch) as root:
        assert populate(SC, root, "/data-link", str(vol))  # symlink followed inside the root
        assert populate(SC, root, "/abs-etc", str(etc_vol))  # "/etc" is the rootfs's /etc
        assert not populate(SC, root, "/image/data", str(full))  # not empty: untouched
        assert not populate(SC, root, "/missing", str(tmp_path / "vol"))
        check_not_file(SC, root, "/image/data", "")
        check_not_file(SC, root, "/missing", "")
        with pytest.raises(SystemError_, match="cannot mount volume over existing file"):
            check_not_file(SC, root, "/file", "/rootfs")
        mounted = [p for p in scratch.iterdir()]
        assert len(mounted) == 1 and is_mounted(mounted[0])
    assert list(scratch.iterdir()) == []
    assert sorted(os.listdir(vol)) == ["added", "kept"]
    assert os.listdir(etc_vol) == ["marker"]
    assert os.listdir(full) == ["mine"]


def test_view_without_layers_is_the_upper_dir(tmp_path: Path) -> None:
    upper = tmp_path / "rootfs"
    (upper / "srv").mkdir(parents=True)
    (upper / "srv" / "x").write_text("x")
    vol = tmp_path / "vol"
    vol.mkdir()
    with rootfs_view(SC, stack_mount((), str(upper), ""), tmp_path) as root:
        assert populate(SC, root, "/srv", str(vol))
    assert os.listdir(vol) == ["x"]


def test_the_view_is_mounted_and_unmounted_through_the_seam(layers: LayerMount, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sc = RecordingSyscalls()  # mounts nothing: the view is the empty mount point
    with rootfs_view(sc, layers, scratch) as root:
        (target,) = scratch.iterdir()
        assert os.path.samestat(os.fstat(root), os.stat(target))
    assert sc.calls == [("mount", ("overlay", str(target), "overlay", 0, layers.data)),
                        ("umount2", (str(target), 0))]
    assert list(scratch.iterdir()) == []
