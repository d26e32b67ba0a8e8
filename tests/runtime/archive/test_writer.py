from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from runtime.archive.extract import extract_chunks
from runtime.archive.writer import tar_directory


def make_upper(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d/f").write_bytes(b"hello")
    os.chown(root / "d/f", 1000, 1001)
    os.chmod(root / "d/f", 0o4711)
    os.link(root / "d/f", root / "hl")
    os.symlink("/etc/x", root / "s")
    os.mknod(root / "deleted", stat.S_IFCHR | 0o600, 0)  # overlay whiteout
    (root / "opq").mkdir()
    os.setxattr(root / "opq", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "d", "trusted.overlay.origin", b"junk")  # never archived
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


def test_archive_content_and_whiteouts(tmp_path: Path) -> None:
    make_upper(tmp_path)
    blob = b"".join(tar_directory(tmp_path))
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(blob))}
    # walk order is by on-disk name: the whiteout for "deleted" comes after "d/f"
    assert list(members) == ["d", "d/f", ".wh.deleted", "fifo", "hl", "null", "opq", "opq/.wh..wh..opq", "s"]
    assert members["d/f"].mode == 0o4711 and members["d/f"].uid == 1000
    assert members["hl"].islnk() and members["hl"].linkname == "d/f"
    assert members[".wh.deleted"].isreg() and members[".wh.deleted"].size == 0
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)
    assert not any("trusted" in k for m in members.values() for k in m.pax_headers)
    assert blob.endswith(bytes(1024))


def test_order_is_bytewise_and_output_deterministic(tmp_path: Path) -> None:
    for name in ["b", "a", "B", "a.b", "a-b", "ä"]:
        (tmp_path / name).write_text(name)
    first = b"".join(tar_directory(tmp_path))
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(first))]
    assert names == sorted(names, key=os.fsencode)
    os.utime(tmp_path / "a", ns=(1, os.stat(tmp_path / "a").st_mtime_ns // 10**9 * 10**9 + 5))  # sub-second only
    assert b"".join(tar_directory(tmp_path)) == first


def test_writer_output_unpacks_to_the_same_tree(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    make_upper(src)
    blob = b"".join(tar_directory(src))
    extract_chunks([blob], dst)
    assert b"".join(tar_directory(dst)) == blob
    assert os.getxattr(dst / "opq", "trusted.overlay.opaque") == b"y"
    assert os.lstat(dst / "deleted").st_rdev == 0 and stat.S_ISCHR(os.lstat(dst / "deleted").st_mode)
