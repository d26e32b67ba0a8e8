"""Tar streams of a container's files (``docker cp`` out of a container, ``docker export``).

Like :mod:`runtime.archive.writer` (the same :mod:`runtime.archive.walk`: fd-relative,
never following symlinks, byte-wise name order; whole-second mtimes, numeric owners, hardlinks as links) but for a *live* view
of a container root: it can start at any member name (dockerd's rebased names, e.g.
``lnk/`` for ``/d/lnk/``), and it stops at mount boundaries that dockerd's own view
does not cross (kernel filesystems, other tmpfs mounts; for export every mount but the
rootfs). Overlay whiteouts do not occur in a merged view, so none are converted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.archive import tarheader as th
from runtime.archive.walk import walk
from runtime.archive.writer import file_blocks


@dataclass(frozen=True, slots=True)
class Boundary:
    """Which directories a walk descends into (by the st_dev of the directory)."""

    pseudo_devs: frozenset[int] = frozenset()
    tmpfs_devs: frozenset[int] = frozenset()
    start_dev: int = -1
    same_mount_only: bool = False

    def descend(self, st: os.stat_result) -> bool:
        dev = st.st_dev
        if dev in self.pseudo_devs:
            return False
        if self.same_mount_only:
            return dev == self.start_dev
        return dev not in self.tmpfs_devs or dev == self.start_dev


class TreeTar:
    def __init__(self, boundary: Boundary) -> None:
        self.boundary = boundary
        self.inodes: dict[tuple[int, int], str] = {}

    def _entry(self, name: str, st: os.stat_result, typ: bytes, **kw: object) -> th.TarEntry:
        return th.TarEntry(name=name, type=typ, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                           gid=st.st_gid, mtime_ns=int(st.st_mtime) * 1_000_000_000,
                           **kw)  # type: ignore[arg-type]

    def nondir(self, dir_fd: int, name: str, st: os.stat_result, member: str) -> Iterator[bytes]:
        """One non-directory ``name`` below ``dir_fd`` as member ``member``."""
        mode = st.st_mode
        typ = th.mode_type(mode)
        if typ is None:
            return  # sockets cannot be archived (dockerd skips them too)
        if st.st_nlink > 1 and not stat.S_ISLNK(mode):
            key = (st.st_dev, st.st_ino)
            first = self.inodes.get(key)
            if first is not None:
                yield th.encode_header(self._entry(member, st, th.LNK, linkname=first))
                return
            self.inodes[key] = member
        if typ == th.SYM:
            target = os.readlink(name, dir_fd=dir_fd)
            yield th.encode_header(self._entry(member, st, th.SYM, linkname=target))
            return
        if typ in (th.CHR, th.BLK):
            yield th.encode_header(self._entry(member, st, typ, devmajor=os.major(st.st_rdev),
                                               devminor=os.minor(st.st_rdev)))
            return
        if typ == th.FIFO:
            yield th.encode_header(self._entry(member, st, typ))
            return
        if st.st_dev in self.boundary.pseudo_devs:
            # kernel files (/proc/kcore claims terabytes): their names only, never content
            yield th.encode_header(self._entry(member, st, th.REG, size=0))
            return
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
        try:
            current = os.fstat(fd)
            if not stat.S_ISREG(current.st_mode):
                return  # swapped for something else since the listing: leave it out
            yield th.encode_header(self._entry(member, st, th.REG, size=st.st_size))
            yield from file_blocks(fd, st.st_size)
        finally:
            os.close(fd)

    def tree(self, dir_fd: int, st: os.stat_result, root_member: str | None,
             prefix: str) -> Iterator[bytes]:
        """Directory ``dir_fd`` (owned by the caller): its own entry as ``root_member``
        (None: no entry, as export writes it), then everything below as ``prefix + path``."""
        if root_member is not None:
            yield th.encode_header(self._entry(root_member, st, th.DIR))
        if not self.boundary.descend(st):
            return
        for entry in walk(dir_fd, prefix, lambda e: self.boundary.descend(e.st), skip_vanished=True):
            if stat.S_ISDIR(entry.st.st_mode):
                yield th.encode_header(self._entry(entry.member + "/", entry.st, th.DIR))
                continue
            try:
                yield from self.nondir(entry.dir_fd, entry.name, entry.st, entry.member)
            except FileNotFoundError:
                continue  # removed while we walked


def end_of_archive() -> bytes:
    return bytes(2 * th.BLOCK)


__all__ = ["Boundary", "TreeTar", "end_of_archive"]
