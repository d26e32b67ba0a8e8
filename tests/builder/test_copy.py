"""COPY/ADD on a real filesystem (builder.copy): semantics, ownership, confinement."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from builder.copy import (
    CopyOptions, Identity, SourceTree, copy_infos_for, go_match, is_archive, normalize_dest, parse_chown,
    perform_copy,
)
from builder.errors import BuildStepError

ROOT = Identity(0, 0)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a").write_text("A")
    (root / "dir" / "sub" / "b").write_text("B")
    (root / "file").write_text("F")
    os.chmod(root / "file", 0o640)
    os.utime(root / "file", (1_600_000_000, 1_600_000_000))
    os.symlink("file", root / "link")
    return root


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    root = tmp_path / "layer"
    (root / "existing").mkdir(parents=True)
    os.chmod(root / "existing", 0o711)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return root


def tree(root: Path) -> SourceTree:
    return SourceTree(root, lambda p: "h:" + p, is_context=True)


def copy(src: Path, layer: Path, source: str, dest: str, identity: Identity | None = ROOT,
         decompress: bool = False) -> None:
    for info in copy_infos_for(tree(src), source):
        perform_copy(layer, dest, info, CopyOptions(identity, decompress))


def test_file_into_dir_and_to_name(src: Path, layer: Path) -> None:
    copy(src, layer, "file", "/existing")
    copy(src, layer, "file", "/new/")
    copy(src, layer, "/file", "/renamed")
    for path in ("existing/file", "new/file", "renamed"):
        st = os.lstat(layer / path)
        assert (layer / path).read_text() == "F" and stat.S_IMODE(st.st_mode) == 0o640
        assert int(st.st_mtime) == 1_600_000_000
    assert stat.S_IMODE(os.stat(layer / "existing").st_mode) == 0o711  # untouched
    assert stat.S_IMODE(os.stat(layer / "new").st_mode) == 0o755


def test_symlink_source_copies_its_target_under_its_name(src: Path, layer: Path) -> None:
    copy(src, layer, "link", "/out/")
    assert not (layer / "out" / "link").is_symlink() and (layer / "out" / "link").read_text() == "F"


def test_directory_contents_are_copied(src: Path, layer: Path) -> None:
    copy(src, layer, "dir", "/d")
    copy(src, layer, "dir/", "/existing/")
    assert (layer / "d" / "a").read_text() == "A" and (layer / "d" / "sub" / "b").read_text() == "B"
    assert (layer / "existing" / "sub" / "b").read_text() == "B" and not (layer / "existing" / "dir").exists()
    assert stat.S_IMODE(os.stat(layer / "existing").st_mode) == 0o711


def test_chown_applies_to_copied_entries_only(src: Path, layer: Path) -> None:
    who = parse_chown("app:staff", layer)
    assert who == Identity(1000, 50)
    copy(src, layer, "dir", "/existing", identity=who)
    copy(src, layer, "dir", "/fresh/nested", identity=who)
    copy(src, layer, "file", "/p/q/r", identity=who)
    assert os.stat(layer / "existing").st_uid == 0  # existed before: left alone, as dockerd
    for path in ("existing/a", "existing/sub", "existing/sub/b", "fresh/nested", "p/q/r", "p", "p/q"):
        st = os.lstat(layer / path)
        assert (st.st_uid, st.st_gid) == (1000, 50), path
    assert os.stat(layer / "fresh").st_uid == 0  # parents of a directory copy: root


def test_preserved_ownership_for_copy_from(src: Path, layer: Path) -> None:
    os.lchown(src / "file", 123, 456)
    copy(src, layer, "file", "/kept", identity=None)
    st = os.stat(layer / "kept")
    assert (st.st_uid, st.st_gid) == (123, 456)


def test_chown_lookup_errors(layer: Path) -> None:
    assert parse_chown("5", layer) == Identity(5, 5)
    with pytest.raises(BuildStepError, match="can't find uid for user ghost: no such user: ghost"):
        parse_chown("ghost", layer)
    with pytest.raises(BuildStepError, match="can't find gid for group nope: no such group: nope"):
        parse_chown("0:nope", layer)
    with pytest.raises(BuildStepError, match="invalid chown string format: a:b:c"):
        parse_chown("a:b:c", layer)


def test_destination_symlinks_stay_inside_the_layer(src: Path, layer: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink("/", layer / "rootlink")
    os.symlink(str(outside), layer / "abslink")
    os.symlink("../../../../..", layer / "uplink")
    copy(src, layer, "file", "/rootlink/a")
    copy(src, layer, "file", "/abslink/b")
    copy(src, layer, "dir", "/uplink/c")
    assert (layer / "a").read_text() == "F"
    assert (layer / str(outside).lstrip("/") / "b").read_text() == "F"
    assert (layer / "c" / "a").read_text() == "A"
    assert list(outside.iterdir()) == []


def test_directory_copy_through_planted_symlink(src: Path, layer: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside2"
    outside.mkdir()
    (layer / "target").mkdir()
    os.symlink(str(outside), layer / "target" / "sub")  # the image has target/sub -> host path
    copy(src, layer, "dir", "/target")
    assert list(outside.iterdir()) == []


def test_source_symlinks_stay_inside_the_context(tmp_path: Path, layer: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    os.symlink("/etc/passwd", ctx / "abs")
    with pytest.raises(BuildStepError, match="file not found in build context"):
        copy(ctx, layer, "abs", "/x")


def test_wildcards(src: Path, layer: Path) -> None:
    infos = copy_infos_for(tree(src), "dir/*")
    assert [i.path for i in infos] == ["dir/a", "dir/sub"]
    assert [i.path for i in copy_infos_for(tree(src), "[fl]i*")] == ["file", "link"]
    assert [i.path for i in copy_infos_for(tree(src), "f?le")] == ["file"]


def test_checksums(src: Path) -> None:
    (info,) = copy_infos_for(tree(src), "dir")
    # like dockerd's walk: the directory itself and everything below it, sorted
    listed = ",".join(sorted(["h:dir", "h:dir/a", "h:dir/sub", "h:dir/sub/b"]))
    assert info.hash == "dir:" + hashlib.sha256(listed.encode()).hexdigest()
    (info,) = copy_infos_for(tree(src), "./file")
    assert info.hash == "file:h:file"
    image_tree = SourceTree.of_directory(src)
    first = image_tree.hash("file")
    os.utime(src / "file", (1, 1))
    assert SourceTree.of_directory(src).hash("file") == first  # mtime is not part of it
    (src / "file").write_text("G")
    assert SourceTree.of_directory(src).hash("file") != first


def test_add_extracts_local_archives(tmp_path: Path, layer: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/f")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (ctx / "a.tgz").write_bytes(buf.getvalue())
    (ctx / "plain.txt").write_text("not a tar" * 100)
    assert is_archive(ctx / "a.tgz") and not is_archive(ctx / "plain.txt")
    copy(ctx, layer, "a.tgz", "/x/", decompress=True)
    copy(ctx, layer, "a.tgz", "/y/", decompress=False)
    copy(ctx, layer, "plain.txt", "/z/", decompress=True)
    assert (layer / "x" / "inner" / "f").read_text() == "hi"
    assert (layer / "y" / "a.tgz").is_file() and (layer / "z" / "plain.txt").is_file()


@pytest.mark.parametrize(("workdir", "dest", "expected"), [
    ("", "x", "/x"), ("/w", "x", "/w/x"), ("/w", "x/", "/w/x/"), ("/w", ".", "/w"), ("/w", "./", "/w/"),
    ("/w", "/abs", "/abs"), ("/w", "../up", "/up"),
])
def test_normalize_dest(workdir: str, dest: str, expected: str) -> None:
    assert normalize_dest(workdir, dest) == expected


@pytest.mark.parametrize(("pattern", "name", "matched"), [
    ("*", "abc", True), ("*", "a/b", False), ("a*/b", "abc/b", True), ("a?c", "abc", True),
    ("a[b-d]", "ac", True), ("a[^b]", "ab", False), ("a\\*", "a*", True), ("a\\*", "ab", False),
    ("[", "[", False), ("*c", "abc", True), ("*/*", "a/b", True), ("a*b*c", "aXbYc", True),
])
def test_go_match(pattern: str, name: str, matched: bool) -> None:
    assert go_match(pattern, name) is matched
