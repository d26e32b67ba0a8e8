"""Tar walks of a container view: member names, links, and mount boundaries."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.containers.treetar import Boundary, TreeTar, end_of_archive


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "t"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f").write_text("data")
    os.link(root / "a" / "f", root / "a" / "hard")
    os.symlink("/nowhere", root / "a" / "sym")
    (root / "mnt").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "mnt")], check=True)
    (root / "mnt" / "inside").write_text("x")
    yield root
    subprocess.run(["umount", str(root / "mnt")], check=True)


def _archive(root: Path, boundary: Boundary) -> dict[str, tarfile.TarInfo]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        data = b"".join([*TreeTar(boundary).tree(fd, os.fstat(fd), "top/", "top/"),
                         end_of_archive()])
    finally:
        os.close(fd)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: m for m in t.getmembers()}


def test_members_links_and_tmpfs_boundary(tree: Path) -> None:
    dev = os.stat(tree / "mnt").st_dev
    members = _archive(tree, Boundary(tmpfs_devs=frozenset({dev})))
    assert sorted(members) == ["top", "top/a", "top/a/f", "top/a/hard", "top/a/sym", "top/mnt"]
    assert members["top/a/hard"].islnk() and members["top/a/hard"].linkname == "top/a/f"
    assert members["top/a/sym"].issym() and members["top/a/sym"].linkname == "/nowhere"
    assert members["top/a/f"].size == 4 and members["top/a/f"].mtime == int(
        os.stat(tree / "a" / "f").st_mtime)
    # a walk that starts inside the tmpfs does descend into it
    fd = os.open(tree / "mnt", os.O_RDONLY | os.O_DIRECTORY)
    try:
        data = b"".join([*TreeTar(Boundary(tmpfs_devs=frozenset({dev}), start_dev=dev)).tree(
            fd, os.fstat(fd), None, ""), end_of_archive()])
    finally:
        os.close(fd)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.getnames() == ["inside"]


def test_pseudo_filesystems_and_same_mount_only(tree: Path) -> None:
    dev = os.stat(tree / "mnt").st_dev
    assert "top/mnt/inside" not in _archive(tree, Boundary(pseudo_devs=frozenset({dev}),
                                                           start_dev=dev))
    export = _archive(tree, Boundary(start_dev=os.stat(tree).st_dev, same_mount_only=True))
    assert "top/mnt" in export and "top/mnt/inside" not in export
    assert "top/mnt/inside" in _archive(tree, Boundary())


def test_kernel_files_are_archived_empty(tmp_path: Path) -> None:
    proc_dev = os.stat("/proc/self/status").st_dev
    fd = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY)
    try:
        walker = TreeTar(Boundary(pseudo_devs=frozenset({proc_dev})))
        data = b"".join([*walker.nondir(fd, "status", os.stat("status", dir_fd=fd), "status"),
                         end_of_archive()])
    finally:
        os.close(fd)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        member = t.getmember("status")
        assert member.isfile() and member.size == 0
