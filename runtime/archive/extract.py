"""Safe, fast tar extraction: the one unpacker behind import, load, pull, build and cp.

Containment follows dockerd, which unpacks inside a chroot of the destination:

* member names are cleaned as if joined to "/": ``../x``, ``/x`` and ``a/../../x`` all land
  inside the destination (``x``); nothing is ever written outside it;
* parent directories are resolved *inside* the destination (:class:`RootFD`): a symlink
  created by an earlier member is followed only within the root, never out of it;
* the final component is never followed: regular files are created with
  ``O_CREAT|O_EXCL|O_NOFOLLOW`` after removing whatever was there, metadata is applied
  through the new fd or with ``AT_SYMLINK_NOFOLLOW``;
* hardlink targets are resolved the same way, so a link to ``../../etc/passwd`` can only
  name ``etc/passwd`` of the destination (and fails when that does not exist).

Whiteouts are converted for the overlay layer store (``.wh.<name>`` becomes a 0:0 character
device, ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y``), applied by deletion (for
flattening), or kept as plain files.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from runtime.archive import tarheader as th
from runtime.archive.compression import Readable, decompressed_chunks
from runtime.archive.errors import ArchiveError, MalformedArchive
from runtime.archive.reader import RawSink, TarReader
from runtime.archive.rootfd import DIR_FLAGS, Dir, RootFD, clean_member_name, remove_tree

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_MAX_NS = (1 << 63) - 1
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class WhiteoutMode(enum.Enum):
    OVERLAY = "overlay"  # convert to overlayfs whiteouts (layer store)
    DELETE = "delete"  # apply them by deleting (flatten into one tree, like docker cp)
    KEEP = "keep"  # treat as ordinary files


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    whiteouts: WhiteoutMode = WhiteoutMode.OVERLAY
    #: apply uid/gid from the archive (we run as root); False keeps the caller's owner
    preserve_owner: bool = True
    #: refuse to replace a directory by a non-directory and vice versa (docker cp)
    no_overwrite_dir_non_dir: bool = False


@dataclass(frozen=True, slots=True)
class ExtractResult:
    digest: str  # "sha256:<hex>" of the whole uncompressed stream (a layer's diff ID)
    size: int  # bytes of content, counted as dockerd counts a layer (files + symlink text)
    entries: int
    tar_size: int = 0  # bytes of the uncompressed stream


class ContentRecorder(RawSink, Protocol):
    """Receives the stream as raw bytes plus references to file content written to disk
    (see :mod:`runtime.archive.tarsplit`)."""

    def file(self, path: str, size: int) -> None:
        """The next ``size`` bytes of the stream are the content of ``path`` (relative to
        the destination, symlink-free)."""

    def claims(self, path: str) -> bool:
        """True when content recorded earlier lives at or below ``path``."""

    def stash(self, parent_fd: int, name: str, path: str) -> None:
        """Move ``name`` (at ``path``) out of the tree, keeping its recorded content."""


#: ``divert(path, size, fd, content)`` takes over a regular file's content: it may write it to
#: ``fd`` (the new, empty file at ``path``) or consume it elsewhere (see ``docker load``)
Divert = Callable[[str, int, int, Iterator[bytes]], None]


def _bound(ns: int) -> int:
    return ns if 0 <= ns <= _MAX_NS else 0


class _Extractor:
    def __init__(
        self, root: RootFD, options: ExtractOptions, recorder: ContentRecorder | None,
        divert: tuple[int, Divert] | None = None,
    ) -> None:
        self.root = root
        self.opts = options
        self.rec = recorder
        self.divert = divert
        self.dir_times: list[tuple[str, int, int]] = []
        self.unpacked: set[str] = set()
        self.size = 0
        self.size_dirty = False
        self.entries = 0

    # -- helpers ---------------------------------------------------------------------------

    def _remove(self, parent: Dir, name: str, path: str, st: os.stat_result) -> None:
        self.size_dirty = True
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.rec is not None and self.rec.claims(path):
            self.rec.stash(parent.fd, name, path)
        elif is_dir:
            remove_tree(parent.fd, name)
        else:
            os.unlink(name, dir_fd=parent.fd)
        if is_dir or stat.S_ISLNK(st.st_mode):
            self.root.invalidate()

    def _lstat(self, parent: Dir, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _chown(self, parent: Dir, name: str, e: th.TarEntry) -> None:
        if self.opts.preserve_owner:
            os.chown(name, e.uid, e.gid, dir_fd=parent.fd, follow_symlinks=False)

    def _set_xattrs_path(self, parent: Dir, name: str, e: th.TarEntry) -> None:
        if e.xattrs:
            # xattr calls take no dir_fd; the magic link to the trusted parent fd stands in
            path = f"/proc/self/fd/{parent.fd}/{name}"
            for key, value in e.xattrs.items():
                self._setxattr(path, key, value, follow=False)

    def _setxattr(self, target: int | str, key: str, value: bytes, follow: bool = True) -> None:
        try:
            os.setxattr(target, key, value, follow_symlinks=follow)
        except OSError as exc:
            # dockerd ignores EPERM (restricted xattr namespaces); everything else fails
            if exc.errno not in (errno.EPERM, errno.ENOTSUP):
                raise

    def _times(self, e: th.TarEntry) -> tuple[int, int]:
        mtime = _bound(e.mtime_ns)
        atime = _bound(max(e.atime_ns or 0, e.mtime_ns))
        return atime, mtime

    # -- members ---------------------------------------------------------------------------

    def member(self, reader: TarReader, e: th.TarEntry) -> None:
        path = clean_member_name(e.name)
        if not path:
            if e.is_dir:
                return  # "./" entries: the destination already exists, as dockerd skips "."
            raise ArchiveError(f"Error processing tar file: cannot replace the root with {e.name!r}")
        parent_lex, _, base = path.rpartition("/")
        if self.opts.whiteouts is not WhiteoutMode.KEEP and path.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS metadata (/.wh..wh.plnk, /.wh..wh.aufs): not part of the tree
        if base.startswith(WHITEOUT_PREFIX) and self.opts.whiteouts is not WhiteoutMode.KEEP:
            self._whiteout(e, path, parent_lex, base)
            return
        parent = self.root.dir(parent_lex, create=True)
        with self.root.hold(parent):
            real = f"{parent.real}/{base}" if parent.real else base
            existing = self._lstat(parent, base)
            if existing is not None:
                is_dir = stat.S_ISDIR(existing.st_mode)
                if self.opts.no_overwrite_dir_non_dir and is_dir != e.is_dir:
                    what = ("directory", "non-directory") if is_dir else ("non-directory", "directory")
                    raise ArchiveError(f"cannot overwrite {what[0]} {'/' + real!r} with {what[1]}")
                if not (is_dir and e.is_dir):
                    self._remove(parent, base, real, existing)
            self._create(reader, e, parent, base, real, path)
            self.unpacked.add(real)

    def _create(self, reader: TarReader, e: th.TarEntry, parent: Dir, name: str, real: str, lexical: str) -> None:
        t = e.type
        if e.is_regular:
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent.fd)
            try:
                if self.rec is not None and e.size:
                    self.rec.file(real, e.size)
                    reader.copy_to_fd(fd)
                elif self.divert is not None and e.size >= self.divert[0]:
                    self.divert[1](real, e.size, fd, reader.chunks(record=False))
                elif e.size:
                    reader.copy_to_fd(fd)
                if self.opts.preserve_owner:
                    os.fchown(fd, e.uid, e.gid)
                for key, value in e.xattrs.items():
                    self._setxattr(fd, key, value)
                os.fchmod(fd, e.mode)
                os.utime(fd, ns=self._times(e))
            finally:
                os.close(fd)
            self.size += e.size
            return
        if t == th.DIR:
            try:
                os.mkdir(name, 0o700, dir_fd=parent.fd)
            except FileExistsError:
                pass
            fd = os.open(name, DIR_FLAGS, dir_fd=parent.fd)
            d = self.root.adopt(lexical, fd, real)
            if self.opts.preserve_owner:
                os.fchown(d.fd, e.uid, e.gid)
            for key, value in e.xattrs.items():
                self._setxattr(d.fd, key, value)
            os.fchmod(d.fd, e.mode)
            self.dir_times.append((lexical, *self._times(e)))
            return
        if t == th.SYM:
            os.symlink(e.linkname, name, dir_fd=parent.fd)
            self._chown(parent, name, e)
            self._set_xattrs_path(parent, name, e)
            os.utime(name, ns=self._times(e), dir_fd=parent.fd, follow_symlinks=False)
            self.size += len(os.fsencode(e.linkname))
            return
        if t == th.LNK:
            self._hardlink(e, parent, name)
            return
        if t in (th.CHR, th.BLK, th.FIFO):
            if t == th.FIFO:
                os.mkfifo(name, 0o600, dir_fd=parent.fd)
            else:
                kind = stat.S_IFCHR if t == th.CHR else stat.S_IFBLK
                os.mknod(name, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=parent.fd)
            self._chown(parent, name, e)
            self._set_xattrs_path(parent, name, e)
            # just created by us in a directory we hold: it is not a symlink
            os.chmod(name, e.mode, dir_fd=parent.fd)
            os.utime(name, ns=self._times(e), dir_fd=parent.fd, follow_symlinks=False)
            return
        raise ArchiveError(f"Error processing tar file: unhandled tar header type {t.decode('latin-1')!r}")

    def _hardlink(self, e: th.TarEntry, parent: Dir, name: str) -> None:
        target = clean_member_name(e.linkname)
        if not target:
            raise ArchiveError(f"Error processing tar file: invalid hardlink {e.name!r} -> {e.linkname!r}")
        try:
            tparent, tname = self.root.parent_of(target)
            with self.root.hold(tparent):
                os.link(tname, name, src_dir_fd=tparent.fd, dst_dir_fd=parent.fd, follow_symlinks=False)
        except OSError as exc:
            raise ArchiveError(
                f"Error processing tar file: link /{target} /{clean_member_name(e.name)}: "
                f"{os.strerror(exc.errno or errno.EIO).lower()}"
            ) from exc
        st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        self._chown(parent, name, e)
        self._set_xattrs_path(parent, name, e)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, e.mode, dir_fd=parent.fd)
            os.utime(name, ns=self._times(e), dir_fd=parent.fd, follow_symlinks=False)

    def _whiteout(self, e: th.TarEntry, path: str, parent_lex: str, base: str) -> None:
        parent = self.root.dir(parent_lex, create=True)
        with self.root.hold(parent):
            if self.opts.whiteouts is WhiteoutMode.OVERLAY:
                if base == WHITEOUT_OPAQUE:
                    self._setxattr(parent.fd, OPAQUE_XATTR, b"y")
                    return
                if base.startswith(WHITEOUT_META_PREFIX):
                    return  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the tree
                orig = base[len(WHITEOUT_PREFIX) :]
                real = f"{parent.real}/{orig}" if parent.real else orig
                existing = self._lstat(parent, orig)
                if existing is not None:
                    self._remove(parent, orig, real, existing)
                os.mknod(orig, stat.S_IFCHR | 0o600, 0, dir_fd=parent.fd)
                if self.opts.preserve_owner:
                    os.chown(orig, e.uid, e.gid, dir_fd=parent.fd, follow_symlinks=False)
                self.unpacked.add(real)
                return
            # DELETE: apply the whiteout to what is already in the tree
            if base == WHITEOUT_OPAQUE:
                for child in os.listdir(parent.fd):
                    real = f"{parent.real}/{child}" if parent.real else child
                    if real not in self.unpacked:
                        st = self._lstat(parent, child)
                        if st is not None:
                            self._remove(parent, child, real, st)
                return
            if base.startswith(WHITEOUT_META_PREFIX):
                return
            orig = base[len(WHITEOUT_PREFIX) :]
            real = f"{parent.real}/{orig}" if parent.real else orig
            st = self._lstat(parent, orig)
            if st is not None:
                self._remove(parent, orig, real, st)

    def finish_dirs(self) -> None:
        # directory times last: creating children would bump them again
        for lexical, atime, mtime in self.dir_times:
            try:
                d = self.root.dir(lexical)
            except OSError:
                continue  # removed later in the same archive
            os.utime(d.fd, ns=(atime, mtime))


def extract_chunks(
    chunks: Iterable[bytes],
    dest: Path | int,
    options: ExtractOptions = ExtractOptions(),
    recorder: ContentRecorder | None = None,
    divert: tuple[int, Divert] | None = None,
) -> ExtractResult:
    """Unpack the uncompressed tar stream ``chunks`` into directory ``dest`` (a path or an
    open directory fd, which stays owned by the caller) and return its digest and size.

    ``divert`` (``(min_size, fn)``, without a recorder) hands the content of regular files
    of at least ``min_size`` bytes to ``fn`` instead of writing it (the file is created
    empty first, confined as every other member)."""
    if isinstance(dest, int):
        root_fd = os.dup(dest)
    else:
        root_fd = os.open(dest, DIR_FLAGS)
    root = RootFD(root_fd)
    reader = TarReader(chunks, recorder)
    try:
        ex = _Extractor(root, options, recorder, divert if recorder is None else None)
        while True:
            entry = reader.next()
            if entry is None:
                break
            ex.entries += 1
            try:
                ex.member(reader, entry)
            except (ArchiveError, MalformedArchive):
                raise
            except OSError as exc:
                raise ArchiveError(
                    f"Error processing tar file: {_describe(exc, entry)}"
                ) from exc
        ex.finish_dirs()
        digest = reader.finish()
        size = ex.size if not ex.size_dirty else tree_size(root_fd)
        return ExtractResult(digest=digest, size=size, entries=ex.entries, tar_size=reader.consumed)
    finally:
        reader.close()
        root.close()
        os.close(root_fd)


def _describe(exc: OSError, entry: th.TarEntry) -> str:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"open /{clean_member_name(entry.name)}: {reason}"


def tree_size(root_fd: int) -> int:
    """dockerd's layer size: bytes of every non-directory (symlink text included), each
    inode counted once."""
    seen: set[int] = set()
    total = 0
    for _dirpath, dirnames, filenames, dfd in os.fwalk(".", dir_fd=root_fd):
        for name in (*filenames, *dirnames):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            total += st.st_size
    return total


def extract(
    src: Readable,
    dest: Path | int,
    options: ExtractOptions = ExtractOptions(),
    recorder: ContentRecorder | None = None,
) -> ExtractResult:
    """Unpack a possibly compressed (gzip, bzip2, xz, zstd) tar stream into ``dest``."""
    _kind, chunks = decompressed_chunks(src)
    return extract_chunks(chunks, dest, options, recorder)
