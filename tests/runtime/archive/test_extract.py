from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.archive.errors import ArchiveError, MalformedArchive
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from tests.runtime.archive.tarbuild import Member, build, dir_, hard, reg, sym


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where archives go; outside must never change."""
    dest = tmp_path / "box" / "dest"
    dest.mkdir(parents=True)
    outside = tmp_path / "box" / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original")
    return dest, outside


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (st.st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
    return out


def tree(dest: Path) -> set[str]:
    return {str(p.relative_to(dest)) for p in dest.rglob("*")}


def run(data: bytes, dest: Path, **opts: object):  # type: ignore[no-untyped-def]
    return extract_chunks([data], dest, ExtractOptions(**opts))  # type: ignore[arg-type]


def test_regular_tree_metadata_is_preserved(box: tuple[Path, Path]) -> None:
    dest, _ = box
    data = build([
        dir_("etc", mode=0o751, uid=5, gid=6, mtime=1_500_000_000),
        reg("etc/passwd", b"root:x:0:0\n", mode=0o4755, uid=1000, gid=1001, mtime=1_400_000_000),
        sym("etc/link", "passwd", uid=7, gid=8),
        Member("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        Member("dev/fifo", tarfile.FIFOTYPE, mode=0o640),
    ])
    result = run(data, dest)
    assert result.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.entries == 5
    assert result.size == len(b"root:x:0:0\n") + len("passwd")
    st = os.lstat(dest / "etc/passwd")
    assert stat.S_IMODE(st.st_mode) == 0o4755  # setuid survives the chown
    assert (st.st_uid, st.st_gid, int(st.st_mtime)) == (1000, 1001, 1_400_000_000)
    d = os.lstat(dest / "etc")
    assert stat.S_IMODE(d.st_mode) == 0o751 and (d.st_uid, d.st_gid) == (5, 6)
    assert int(d.st_mtime) == 1_500_000_000  # set after the children were created
    link = os.lstat(dest / "etc/link")
    assert os.readlink(dest / "etc/link") == "passwd" and (link.st_uid, link.st_gid) == (7, 8)
    dev = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(dest / "dev/fifo").st_mode)
    # implied parent directory of dev/null: 0755 root
    assert stat.S_IMODE(os.lstat(dest / "dev").st_mode) == 0o755


@pytest.mark.parametrize(
    "name,expected",
    [("../x", "x"), ("../../../../x", "x"), ("/abs", "abs"), ("a/../../y", "y"), ("./a/./b", "a/b")],
)
def test_dotdot_and_absolute_names_are_confined(box: tuple[Path, Path], name: str, expected: str) -> None:
    dest, outside = box
    before = snapshot(dest.parent)
    run(build([reg(name, b"payload")]), dest)
    assert (dest / expected).read_bytes() == b"payload"
    assert snapshot(outside) == {k[len("outside/"):]: v for k, v in before.items() if k.startswith("outside/")}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest", "outside"]


def test_symlink_then_write_through_it_stays_inside(box: tuple[Path, Path]) -> None:
    dest, outside = box
    # absolute and relative links that point at the real "outside" directory
    for target in (str(outside), "../outside", "../../../../../../" + str(outside).lstrip("/")):
        for p in list(dest.iterdir()):
            os.unlink(p)
        data = build([sym("lnk", target), reg("lnk/victim", b"pwned")])
        with pytest.raises(ArchiveError, match="no such file or directory"):
            run(data, dest)
        assert (outside / "victim").read_text() == "original"


def test_symlink_inside_root_is_followed_like_a_chroot(box: tuple[Path, Path]) -> None:
    dest, outside = box
    data = build([dir_("usr/lib"), sym("lib", "usr/lib"), reg("lib/libc.so", b"elf"),
                  sym("abs", "/usr"), reg("abs/lib/two", b"2"), sym("up", "../../.."), dir_("up/lib/sub")])
    run(data, dest)
    assert (dest / "usr/lib/libc.so").read_bytes() == b"elf"
    assert (dest / "usr/lib/two").read_bytes() == b"2"
    assert (dest / "lib/sub").is_dir() and not (dest / "lib").resolve() == dest / "lib"
    assert (dest / "usr/lib/sub").is_dir()  # "up" resolves to the root, never above it
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest", "outside"]


def test_symlink_loop_is_an_error_not_a_hang(box: tuple[Path, Path]) -> None:
    dest, _ = box
    with pytest.raises(ArchiveError):
        run(build([sym("a", "b"), sym("b", "a"), reg("a/x")]), dest)


def test_existing_symlink_is_replaced_not_written_through(box: tuple[Path, Path]) -> None:
    dest, outside = box
    os.symlink(outside / "victim", dest / "f")
    run(build([reg("f", b"new")]), dest)
    assert not (dest / "f").is_symlink() and (dest / "f").read_bytes() == b"new"
    assert (outside / "victim").read_text() == "original"


def test_hardlink_outside_is_contained(box: tuple[Path, Path]) -> None:
    dest, outside = box
    data = build([hard("hl", "../outside/victim")])
    with pytest.raises(ArchiveError, match=r"link /outside/victim /hl: no such file or directory"):
        run(data, dest)
    data = build([hard("hl", str(outside / "victim"))])
    with pytest.raises(ArchiveError, match="no such file or directory"):
        run(data, dest)
    assert (outside / "victim").stat().st_nlink == 1


def test_hardlink_through_symlink_parent_cannot_escape(box: tuple[Path, Path]) -> None:
    dest, outside = box
    data = build([sym("out", str(outside)), hard("hl", "out/victim")])
    with pytest.raises(ArchiveError):
        run(data, dest)
    assert (outside / "victim").stat().st_nlink == 1


def test_hardlink_inside_shares_the_inode(box: tuple[Path, Path]) -> None:
    dest, _ = box
    result = run(build([reg("a", b"data"), hard("b", "/a"), hard("c", "../a")]), dest)
    assert os.lstat(dest / "a").st_ino == os.lstat(dest / "b").st_ino == os.lstat(dest / "c").st_ino
    assert result.size == 4


def test_huge_names(box: tuple[Path, Path]) -> None:
    dest, _ = box
    deep = "/".join(["d" * 200] * 15) + "/file"  # 3 KB: GNU long name / PAX path
    run(build([reg(deep, b"deep")], fmt=tarfile.GNU_FORMAT), dest)
    assert (dest / deep).read_bytes() == b"deep"
    nested = "n/" * 3000 + "leaf"  # deeper than PATH_MAX: fd-relative walking has no limit
    run(build([reg(nested, b"leaf")]), dest)
    fd = os.open(dest, os.O_RDONLY)
    for _ in range(3000):
        fd, old = os.open("n", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    leaf = os.open("leaf", os.O_RDONLY, dir_fd=fd)
    assert os.read(leaf, 10) == b"leaf"
    os.close(leaf)
    os.close(fd)
    # replacing the top of that tree by a file removes it without recursion limits
    run(build([reg("n", b"flat")]), dest)
    assert (dest / "n").read_bytes() == b"flat"
    with pytest.raises(ArchiveError, match="name too long"):
        run(build([reg("x" * 300)]), dest)
    huge = "a/" * 600_000  # 1.2 MB PAX record: refused before allocating anything big
    with pytest.raises(MalformedArchive):
        run(build([reg(huge + "f")]), dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest", "outside"]


def test_whiteouts_become_overlay_whiteouts(box: tuple[Path, Path]) -> None:
    dest, _ = box
    data = build([dir_("etc"), reg("etc/.wh.gone", uid=3, gid=4), dir_("opq"), reg("opq/.wh..wh..opq"),
                  reg(".wh..wh.plnk/123")])
    run(data, dest)
    wh = os.lstat(dest / "etc/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0 and (wh.st_uid, wh.st_gid) == (3, 4)
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert tree(dest) == {"etc", "etc/gone", "opq"}


def test_whiteouts_delete_mode(box: tuple[Path, Path]) -> None:
    dest, _ = box
    run(build([dir_("a"), reg("a/keep"), reg("a/old"), dir_("b"), reg("b/x"), dir_("b/y")]), dest)
    run(build([reg("a/.wh.old"), reg("b/new"), reg("b/.wh..wh..opq"), reg(".wh.nothing")]), dest,
        whiteouts=WhiteoutMode.DELETE)
    assert tree(dest) == {"a", "a/keep", "b", "b/new"}


def test_whiteouts_keep_mode(box: tuple[Path, Path]) -> None:
    dest, _ = box
    run(build([reg(".wh.x", b"plain")]), dest, whiteouts=WhiteoutMode.KEEP)
    assert (dest / ".wh.x").read_bytes() == b"plain"


def test_dir_over_file_and_file_over_dir(box: tuple[Path, Path]) -> None:
    dest, _ = box
    run(build([reg("p", b"file"), dir_("p"), reg("p/child"), reg("q/inner"), reg("q", b"now a file")]), dest)
    assert (dest / "p/child").exists() and (dest / "q").read_bytes() == b"now a file"
    with pytest.raises(ArchiveError, match="cannot overwrite"):
        run(build([reg("p")]), dest, no_overwrite_dir_non_dir=True)


def test_xattrs_and_owner_skipping(box: tuple[Path, Path]) -> None:
    dest, _ = box
    cap = "\x01\x00\x00\x02" + "\x00" * 16
    data = build([reg("bin", b"x", uid=42, pax={"SCHILY.xattr.user.test": "v", "SCHILY.xattr.security.capability": cap})])
    run(data, dest)
    assert os.getxattr(dest / "bin", "user.test") == b"v"
    assert os.getxattr(dest / "bin", "security.capability") == cap.encode("latin-1")
    (dest / "bin").unlink()
    run(data, dest, preserve_owner=False)
    assert os.lstat(dest / "bin").st_uid == 0


def test_malformed_inputs(box: tuple[Path, Path]) -> None:
    dest, _ = box
    good = build([reg("a", b"0123456789" * 100)])
    with pytest.raises(MalformedArchive):
        run(good[:700], dest)  # truncated content
    corrupt = bytearray(good)
    corrupt[0] ^= 0xFF  # checksum no longer matches
    with pytest.raises(MalformedArchive):
        run(bytes(corrupt), dest)


def test_trailing_bytes_are_part_of_the_digest(box: tuple[Path, Path]) -> None:
    dest, _ = box
    data = build([reg("a")]) + b"\0" * 4096
    assert run(data, dest).digest == "sha256:" + hashlib.sha256(data).hexdigest()
    empty = bytes(1024)  # Docker's empty layer
    assert run(empty, dest).digest == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def test_many_directories_with_a_tiny_fd_cache(box: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.archive import rootfd

    monkeypatch.setattr(rootfd, "CACHE_SIZE", 2)
    dest, _ = box
    members = []
    for i in range(20):
        members += [dir_(f"d{i}"), reg(f"d{i}/f", str(i).encode()), sym(f"d{i}/up", "..")]
    members += [reg(f"d{i}/up/d{(i + 1) % 20}/g{i}", b"g") for i in range(20)]
    members += [hard(f"h{i}", f"d{i}/f") for i in range(20)]
    run(build(members), dest)
    for i in range(20):
        assert (dest / f"h{i}").read_bytes() == str(i).encode()
        assert (dest / f"d{(i + 1) % 20}" / f"g{i}").exists()
    fds_before = len(os.listdir("/proc/self/fd"))
    run(build(members[:3]), dest)
    assert len(os.listdir("/proc/self/fd")) == fds_before  # no fd leaks


def test_remove_tree_never_follows_symlinks(box: tuple[Path, Path]) -> None:
    from runtime.archive.rootfd import remove_path

    dest, outside = box
    (dest / "t/a").mkdir(parents=True)
    os.symlink(outside, dest / "t/a/link")
    os.symlink(outside / "victim", dest / "t/file-link")
    remove_path(dest / "t")
    assert not (dest / "t").exists() and (outside / "victim").read_text() == "original"


def test_digest_of_a_large_stream_hashed_in_a_helper_thread(box: tuple[Path, Path]) -> None:
    # past a few MB the diff ID is hashed in a helper thread: same digest, helper gone
    import threading

    dest, _ = box
    blob = build([dir_("d"), *(reg(f"d/f{i}", bytes([i]) * (700 << 10)) for i in range(12))])
    chunks = [blob[i : i + (256 << 10)] for i in range(0, len(blob), 256 << 10)]
    result = extract_chunks(chunks, dest)
    assert result.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (dest / "d" / "f11").read_bytes() == bytes([11]) * (700 << 10)
    assert not [t for t in threading.enumerate() if t.name == "tar-hash"]


def test_hash_helper_stops_when_extraction_fails(box: tuple[Path, Path]) -> None:
    import threading

    dest, _ = box
    blob = build([dir_("d"), *(reg(f"d/f{i}", b"x" * (1 << 20)) for i in range(6))])
    with pytest.raises(MalformedArchive):
        extract_chunks([blob[: len(blob) - 3000]], dest)
    assert not [t for t in threading.enumerate() if t.name == "tar-hash"]


def test_process_umask_is_neither_used_nor_changed(box: tuple[Path, Path]) -> None:
    # the umask is process-wide: extractions running side by side (pull stages three layers
    # at once) must not leave it changed, and modes come from the archive, not from it
    dest, _ = box
    old = os.umask(0o077)
    try:
        extract_chunks([build([reg("implied/dir/f", b"x", mode=0o644), dir_("d", mode=0o775)])], dest)
        assert os.umask(0o077) == 0o077
    finally:
        os.umask(old)
    assert stat.S_IMODE((dest / "implied").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "implied" / "dir").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "implied" / "dir" / "f").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "d").stat().st_mode) == 0o775
