"""Deterministic tar output for a directory tree (commit, export, save of new layers).

The walk (:mod:`runtime.archive.walk`) is fd-relative and never follows symlinks.
Members come in byte-wise name order, with whole-second mtimes, no atime/ctime, no
user/group names and only the ``security.capability`` xattr, as dockerd writes layer
diffs; hardlinked files are emitted once and then as links. Overlay whiteouts in an upper directory are turned back into
archive whiteouts: a 0:0 character device becomes an empty ``.wh.<name>`` file and a
directory with ``trusted.overlay.opaque=y`` is followed by ``<dir>/.wh..wh..opq``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from runtime.archive import tarheader as th
from runtime.archive.extract import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from runtime.archive.rootfd import DIR_FLAGS
from runtime.archive.walk import walk

_READ = 1 << 20
CAPABILITY_XATTR = "security.capability"
# VFS_CAP_REVISION_3 carries a namespace root uid; Docker stores revision 2 (20 bytes)
_CAP_V2_SIZE = 20


def _capability(path: int | str, follow: bool) -> dict[str, bytes]:
    try:
        value = os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=follow)
    except OSError:
        return {}
    if len(value) > 3 and value[3] == 3:
        value = value[:3] + b"\x02" + value[4:_CAP_V2_SIZE]
    return {CAPABILITY_XATTR: value}


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def file_blocks(fd: int, size: int) -> Iterator[bytes]:
    """The data blocks of a regular file member of ``size`` bytes read from ``fd``,
    padded to whole blocks; a file that shrank while read is padded with zeros so the
    archive stays well-formed."""
    remaining = size
    while remaining > 0:
        piece = os.read(fd, min(_READ, remaining))
        if not piece:
            yield bytes(remaining)
            break
        remaining -= len(piece)
        yield piece
    if size % th.BLOCK:
        yield bytes(th.BLOCK - size % th.BLOCK)


class _Walker:
    def __init__(self, overlay_whiteouts: bool) -> None:
        self.overlay = overlay_whiteouts
        self.inodes: dict[tuple[int, int], str] = {}

    def entries(self, root_fd: int, prefix: str) -> Iterator[bytes]:
        for entry in walk(root_fd, prefix):
            if entry.fd is not None:
                yield from self._dir(entry.fd, entry.member, entry.st)
            else:
                yield from self._nondir(entry.dir_fd, entry.name, entry.member, entry.st)

    def _base(self, member: str, st: os.stat_result, typ: bytes, **kw: object) -> th.TarEntry:
        return th.TarEntry(
            name=member,
            type=typ,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            mtime_ns=int(st.st_mtime) * 1_000_000_000,
            **kw,  # type: ignore[arg-type]
        )

    def _dir(self, fd: int, member: str, st: os.stat_result) -> Iterator[bytes]:
        entry = self._base(member + "/", st, th.DIR, xattrs=_capability(fd, True))
        yield th.encode_header(entry)
        if self.overlay and _is_opaque(fd):
            marker = th.TarEntry(
                name=f"{member}/{WHITEOUT_OPAQUE}",
                type=th.REG,
                mode=stat.S_IMODE(st.st_mode) & 0o777,
                uid=st.st_uid,
                gid=st.st_gid,
            )
            yield th.encode_header(marker)

    def _nondir(self, dfd: int, name: str, member: str, st: os.stat_result) -> Iterator[bytes]:
        mode = st.st_mode
        if self.overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
            parent, _, base = member.rpartition("/")
            wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
            yield th.encode_header(
                th.TarEntry(name=wh, type=th.REG, mode=0o600, uid=st.st_uid, gid=st.st_gid,
                            mtime_ns=int(st.st_mtime) * 1_000_000_000)
            )
            return
        typ = th.mode_type(mode)
        if typ is None:
            return  # sockets cannot be archived; dockerd skips them too
        proc_path = f"/proc/self/fd/{dfd}/{name}"
        xattrs = _capability(proc_path, False)
        if typ != th.DIR and st.st_nlink > 1 and not stat.S_ISLNK(mode):
            key = (st.st_dev, st.st_ino)
            first = self.inodes.get(key)
            if first is not None:
                yield th.encode_header(self._base(member, st, th.LNK, linkname=first, xattrs=xattrs))
                return
            self.inodes[key] = member
        if typ == th.SYM:
            target = os.readlink(name, dir_fd=dfd)
            yield th.encode_header(self._base(member, st, th.SYM, linkname=target, xattrs=xattrs))
            return
        if typ in (th.CHR, th.BLK):
            yield th.encode_header(
                self._base(member, st, typ, devmajor=os.major(st.st_rdev),
                           devminor=os.minor(st.st_rdev), xattrs=xattrs)
            )
            return
        if typ == th.FIFO:
            yield th.encode_header(self._base(member, st, typ, xattrs=xattrs))
            return
        size = st.st_size
        yield th.encode_header(self._base(member, st, th.REG, size=size, xattrs=xattrs))
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            yield from file_blocks(fd, size)
        finally:
            os.close(fd)


def tar_directory(root: Path | int, overlay_whiteouts: bool = True, prefix: str = "") -> Iterator[bytes]:
    """Yield an uncompressed tar of the tree below ``root`` (the root itself is not a
    member), ending with the two zero blocks. ``prefix`` is prepended to member names."""
    root_fd = os.open(root, DIR_FLAGS) if not isinstance(root, int) else os.dup(root)
    try:
        yield from _Walker(overlay_whiteouts).entries(root_fd, prefix)
        yield bytes(2 * th.BLOCK)
    finally:
        os.close(root_fd)
