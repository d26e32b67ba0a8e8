"""The build context (builder.context): unpacking, checksums, scoped paths, .dockerignore."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.context import (
    PathOutsideContext, is_ignored, open_context, read_dockerfile, read_dockerignore, resolve_in_scope, tarsums,
)
from runtime.archive.errors import MalformedArchive
from runtime.errors import InvalidParameter, SystemError_


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "",
        mode: int = 0o644, uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = uid
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_tar(build: object, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        build(tar)  # type: ignore[operator]
    return buf.getvalue()


def v1_sum(name: str, mode: int, size: int, typeflag: str, data: bytes = b"", uid: int = 0, link: str = "") -> str:
    """The TarSum v1 of one member, written out by hand (the selection dockerd hashes)."""
    h = hashlib.sha256()
    for key, value in (("name", name), ("mode", str(mode)), ("uid", str(uid)), ("gid", "0"), ("size", str(size)),
                       ("typeflag", typeflag), ("linkname", link), ("uname", ""), ("gname", ""),
                       ("devmajor", "0"), ("devminor", "0")):
        h.update((key + value).encode())
    h.update(data)
    return h.hexdigest()


def test_unpacks_and_checksums(tmp_path: Path) -> None:
    def build(tar: tarfile.TarFile) -> None:
        add(tar, "Dockerfile", b"FROM x\n")
        add(tar, "dir/", kind=tarfile.DIRTYPE, mode=0o755)
        add(tar, "./dir/file", b"hello", mode=0o600, uid=7)
        add(tar, "link", kind=tarfile.SYMTYPE, link="dir/file")

    context = open_context(io.BytesIO(gzip.compress(make_tar(build))), tmp_path)
    try:
        assert (context.root / "dir" / "file").read_bytes() == b"hello"
        assert os.stat(context.root / "dir" / "file").st_uid == 7
        expected = v1_sum("./dir/file", 0o600, 5, "0", b"hello", uid=7)
        assert context.sums["dir/file"] == expected
        assert context.hash("dir/file") == expected
        assert context.hash("link") == expected  # symlinks are hashed as what they point to
        assert context.sums["dir"] == v1_sum("dir/", 0o755, 0, "5")
        assert context.hash("missing") == "missing"
        with pytest.raises(PathOutsideContext, match=r"^forbidden path outside the build context: \.\./x \(\)$"):
            context.hash("../x")
    finally:
        context.close()
    assert not context.directory.exists()


def test_pax_names_and_xattrs_are_hashed(tmp_path: Path) -> None:
    long_name = "d/" + "n" * 150

    def build(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(long_name)
        info.size = 1
        info.pax_headers = {"SCHILY.xattr.user.k": "v"}
        tar.addfile(info, io.BytesIO(b"z"))

    sums = tarsums_of(make_tar(build, tarfile.PAX_FORMAT), tmp_path)
    h = hashlib.sha256()
    for key, value in (("name", long_name), ("mode", "420"), ("uid", "0"), ("gid", "0"), ("size", "1"),
                       ("typeflag", "0"), ("linkname", ""), ("uname", ""), ("gname", ""), ("devmajor", "0"),
                       ("devminor", "0"), ("user.k", "v")):
        h.update((key + value).encode())
    h.update(b"z")
    assert sums[long_name] == h.hexdigest()


def tarsums_of(data: bytes, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "t.tar"
    path.write_bytes(data)
    return tarsums(path)


def test_missing_final_padding_is_accepted_like_go(tmp_path: Path) -> None:
    # what the CLI sends for `docker build -f - dir`: the last member's padding is cut off
    data = make_tar(lambda t: (add(t, "a", b"1"), add(t, ".dockerignore", b"x" * 47)))
    end = data.index(b"x" * 47) + 47
    context = open_context(io.BytesIO(data[:end]), tmp_path)
    try:
        assert (context.root / ".dockerignore").read_bytes() == b"x" * 47
    finally:
        context.close()


def test_cut_off_content_is_refused(tmp_path: Path) -> None:
    data = make_tar(lambda t: add(t, "a", b"y" * 100))
    with pytest.raises(MalformedArchive):
        open_context(io.BytesIO(data[:600]), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_symlinks_cannot_leave_the_context(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")

    def build(tar: tarfile.TarFile) -> None:
        add(tar, "abs", kind=tarfile.SYMTYPE, link=str(outside))
        add(tar, "up", kind=tarfile.SYMTYPE, link="../../../../..")
        add(tar, "loop", kind=tarfile.SYMTYPE, link="loop")

    context = open_context(io.BytesIO(make_tar(build)), tmp_path / "scratch")
    try:
        real = resolve_in_scope(context.root, "abs/secret")
        assert real == str(outside / "secret").lstrip("/")  # absolute targets are re-rooted
        assert not (context.root / real).exists()
        assert resolve_in_scope(context.root, "up/x") == "x"
        assert context.full_path("up/etc/passwd") == context.root / "etc/passwd"
        with pytest.raises(OSError):
            resolve_in_scope(context.root, "loop/x")
    finally:
        context.close()


def test_read_dockerfile_and_dockerignore(tmp_path: Path) -> None:
    def build(tar: tarfile.TarFile) -> None:
        add(tar, "Dockerfile", b"FROM a")
        add(tar, "keep", b"k")
        add(tar, ".dockerignore", b"# comment\nDockerfile\n.dockerignore\n!keep\n")

    context = open_context(io.BytesIO(make_tar(build)), tmp_path)
    try:
        assert read_dockerfile(context, "Dockerfile") == ("Dockerfile", b"FROM a")
        assert sorted(os.listdir(context.root)) == ["keep"]  # dockerd drops both when ignored
    finally:
        context.close()


def test_dockerfile_errors(tmp_path: Path) -> None:
    context = open_context(io.BytesIO(make_tar(lambda t: add(t, "empty"))), tmp_path)
    try:
        with pytest.raises(SystemError_, match="^Cannot locate specified Dockerfile: Dockerfile$"):
            read_dockerfile(context, "Dockerfile")
        with pytest.raises(InvalidParameter, match=r"^the Dockerfile \(empty\) cannot be empty$"):
            read_dockerfile(context, "empty")
        with pytest.raises(SystemError_, match=r"^Cannot locate specified Dockerfile: \.\./x$"):
            read_dockerfile(context, "../x")
    finally:
        context.close()


@pytest.mark.parametrize(("patterns", "path", "ignored"), [
    ("*.txt", "a.txt", True),
    ("*.txt", "d/a.txt", False),
    ("**/*.txt", "d/e/a.txt", True),
    ("d", "d/e/f", True),
    ("d/*\n!d/keep", "d/keep", False),
    ("d/*\n!d/keep", "d/other", True),
    ("/Dockerfile", "Dockerfile", True),
    ("./x/../Dockerfile", "Dockerfile", True),
    ("Docker?ile", "Dockerfile", True),
    ("[a-c]x", "bx", True),
    ("[^a-c]x", "bx", False),
])
def test_dockerignore_matching(patterns: str, path: str, ignored: bool) -> None:
    assert is_ignored(path, read_dockerignore(patterns)) is ignored
