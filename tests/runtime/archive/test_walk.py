"""The shared tree walk (runtime.archive.walk): order, depth, descend hook, fd hygiene."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from runtime.archive.walk import walk


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _dir_fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def test_byte_order_prefix_and_no_symlink_follow(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    (tmp_path / "B").write_text("upper")
    (tmp_path / "é").write_text("u")
    (tmp_path / "a.txt").write_text("a")
    os.symlink("b", tmp_path / "link")
    fd = _dir_fd(tmp_path)
    try:
        entries = [(e.member, e.fd is not None) for e in walk(fd, "p/")]
    finally:
        os.close(fd)
    assert entries == [("p/B", False), ("p/a.txt", False), ("p/b", True), ("p/b/x", False),
                       ("p/link", False), ("p/é", False)]


def test_deep_tree_needs_no_recursion_and_closes_fds(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 50
    deep = tmp_path
    for _ in range(depth):
        os.mkdir("d", dir_fd=(fd := _dir_fd(deep)))
        os.close(fd)
        deep = deep / "d"
    (deep / "leaf").write_text("l")
    before = _open_fds()
    fd = _dir_fd(tmp_path)
    try:
        members = [e.member for e in walk(fd)]
    finally:
        os.close(fd)
        _remove_chain(deep)
    assert len(members) == depth + 1 and members[-1] == "d/" * depth + "leaf"
    assert _open_fds() == before


def _remove_chain(deep: Path) -> None:
    """Undo the deep tree without recursion (pytest's recursive tmp cleanup cannot)."""
    (deep / "leaf").unlink()
    while deep.name == "d":
        deep.rmdir()
        deep = deep.parent


def test_descend_hook_and_early_close(tmp_path: Path) -> None:
    for name in ("keep", "skip"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "f").write_text(name)
    before = _open_fds()
    fd = _dir_fd(tmp_path)
    try:
        members = [e.member for e in walk(fd, descend=lambda e: e.name != "skip")]
        assert members == ["keep", "keep/sub", "keep/sub/f", "skip"]
        walker = walk(fd)
        while next(walker).member != "keep/sub":
            pass
        assert len(_open_fds()) == len(before) + 3  # root, keep, keep/sub
        walker.close()
    finally:
        os.close(fd)
    assert _open_fds() == before


def test_vanished_names_skipped_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    fd = _dir_fd(tmp_path)
    try:
        live = walk(fd, skip_vanished=True)
        assert next(live).member == "a"
        os.unlink(tmp_path / "b")
        assert list(live) == []
        (tmp_path / "b").write_text("b")
        strict = walk(fd)
        assert next(strict).member == "a"
        os.unlink(tmp_path / "b")
        with pytest.raises(FileNotFoundError):
            next(strict)
    finally:
        os.close(fd)
