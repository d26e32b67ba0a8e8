"""Container path semantics and in-root resolution (the docker cp CVE surface)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.containers import cpath
from runtime.containers.targuard import go_clean


@pytest.fixture
def root(tmp_path: Path) -> Iterator[int]:
    """A fake container root with hostile links, next to a host directory it must not reach."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("host")
    r = tmp_path / "root"
    (r / "d" / "sub").mkdir(parents=True)
    (r / "d" / "f").write_text("12345")
    (r / "etc").mkdir()
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("/etc", r / "d" / "abs")
    os.symlink("../../../../../../..", r / "d" / "up")
    os.symlink(str(host), r / "hostlink")
    os.symlink("/nowhere/x", r / "dangling")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    fd = os.open(r, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


@pytest.mark.parametrize(("given", "expected"), [
    ("/d", "/d"), ("d", "/d"), ("/d/", "/d/"), ("/d/.", "/d/."), (".", "/."), ("/", "/"),
    ("/a/../../b", "/b"), ("//x//y/", "/x/y/"), ("/d/./", "/d/./"),
])
def test_absolute_preserves_trailing_dot_and_slash(given: str, expected: str) -> None:
    assert cpath.absolute(given) == expected


def test_go_helpers() -> None:
    assert [cpath.go_base(p) for p in ("/d/", "/", "/d/.", "x", "")] == ["d", "/", ".", "x", "."]
    assert cpath.go_split("/d/f") == ("/d/", "f") and cpath.go_split("/d/") == ("/d/", "")
    assert go_clean("../a/./b/..") == "../a" and go_clean("/../x") == "/x"


def test_go_file_mode() -> None:
    assert cpath.go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert cpath.go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert cpath.go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert cpath.go_file_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert cpath.go_file_mode(stat.S_IFIFO | 0o644) == (1 << 25) | 0o644


def test_locate_does_not_follow_the_last_element(root: int) -> None:
    located = cpath.locate(root, "/d/abs")
    try:
        assert stat.S_ISLNK(located.st.st_mode) and located.name == "abs"
    finally:
        located.close()
    located = cpath.locate(root, "/d/abs/")  # trailing slash: the directory behind the link
    try:
        assert located.is_dir and located.name == ""
        assert sorted(os.listdir(located.dir_fd)) == ["passwd"]  # the root's /etc, not the host's
    finally:
        located.close()


def test_resolution_never_leaves_the_root(root: int) -> None:
    for path in ("/d/up/etc", "/hostlink/..", "/../../etc", "/d/up/d/up/etc"):
        fd = cpath.open_dir(root, path)
        try:
            assert "passwd" in os.listdir(fd) or "d" in os.listdir(fd), path
        finally:
            os.close(fd)
    with pytest.raises(FileNotFoundError):
        cpath.locate(root, "/hostlink/secret")  # the host path does not exist in the root
    with pytest.raises(OSError):
        cpath.open_dir(root, "/loop1")
    with pytest.raises(NotADirectoryError):
        cpath.open_dir(root, "/d/f/")


def test_resolve_in_scope_like_follow_symlink_in_scope(root: int) -> None:
    assert cpath.resolve_in_scope(root, "/d/abs") == "/etc"
    assert cpath.resolve_in_scope(root, "/d/up") == "/"
    assert cpath.resolve_in_scope(root, "/d/up/etc/passwd") == "/etc/passwd"
    assert cpath.resolve_in_scope(root, "/dangling") == "/nowhere/x"
    assert cpath.resolve_in_scope(root, "/hostlink/secret") == cpath.go_clean(
        str(Path("/") / os.readlink(f"/proc/self/fd/{root}/hostlink").lstrip("/") / "secret"))
    with pytest.raises(OSError):
        cpath.resolve_in_scope(root, "/loop1/x")
