"""``docker cp`` and ``docker export``: the archive endpoints of a container.

* ``stat`` (HEAD ``/archive``) and ``archive`` (GET): dockerd's path rules
  (:mod:`runtime.containers.cpath`), dockerd's rebased member names (``d/...`` for ``/d``,
  ``./...`` for ``/d/.``, ``/...`` for ``/``) and the ``archive-path`` event;
* ``extract`` (PUT): the body, possibly compressed, is decompressed in this process,
  checked like dockerd checks it (:mod:`runtime.containers.targuard`) and unpacked by the
  confined extractor into a directory fd resolved inside the container root;
* ``export``: the whole root file system as one tar (``export`` event).

All file system work happens in worker threads on fds from
:class:`~runtime.containers.rootfs.RootfsAccess` (its docstring has the security model).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from runtime.archive.compression import decompressed_chunks
from runtime.archive.errors import ArchiveError, MalformedArchive
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.containers.cpath import (
    Located, absolute, go_base, go_file_mode, locate, open_dir, open_path, resolve_in_scope,
)
from runtime.containers.fsdiff import Change, changes
from runtime.containers.model import Container
from runtime.containers.rootfs import Root, RootfsAccess
from runtime.containers.context import ContainerContext
from runtime.containers.targuard import guarded
from runtime.gofmt import go_quote
from runtime.containers.treetar import Boundary, TreeTar, end_of_archive
from runtime.errors import InvalidParameter, NotFound, SystemError_
from runtime.images.streams import AsyncReadable, BlockingReader, iterate_in_thread


@dataclass(frozen=True, slots=True)
class PathStat:
    """``types.ContainerPathStat``: ``mode`` is a Go ``os.FileMode``."""

    name: str
    size: int
    mode: int
    mtime_ns: int
    link_target: str


class FileNotInContainer(NotFound):
    def __init__(self, path: str, ref: str) -> None:
        super().__init__(f"Could not find the file {path} in container {ref}")


def _stat_of(root_fd: int, located: Located) -> PathStat:
    st = located.st
    link = ""
    if located.name and stat.S_ISLNK(st.st_mode):
        link = resolve_in_scope(root_fd, located.abs_path)
    return PathStat(go_base(located.abs_path), st.st_size, go_file_mode(st.st_mode),
                    st.st_mtime_ns, link)


def _boundary(root: Root, start_dev: int, same_mount_only: bool = False) -> Boundary:
    return Boundary(root.pseudo_devs, root.tmpfs_devs, start_dev, same_mount_only)


def _archive_chunks(root: Root, located: Located) -> Iterator[bytes]:
    """The tar of ``located`` with dockerd's rebased names; closes both when done."""
    try:
        name = go_base(located.abs_path)
        walker = TreeTar(_boundary(root, located.st.st_dev))
        if located.is_dir:
            prefix = "" if name == "/" else name
            if located.name:
                fd = os.open(located.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=located.dir_fd)
            else:
                fd = os.dup(located.dir_fd)
            try:
                yield from walker.tree(fd, located.st, prefix + "/", prefix + "/")
            finally:
                os.close(fd)
        else:
            yield from walker.nondir(located.dir_fd, located.name, located.st, name)
        yield end_of_archive()
    finally:
        located.close()
        root.close()


def _export_chunks(root: Root) -> Iterator[bytes]:
    try:
        st = os.fstat(root.fd)
        walker = TreeTar(_boundary(root, st.st_dev, same_mount_only=True))
        yield from walker.tree(root.fd, st, None, "")
        yield end_of_archive()
    finally:
        root.close()


class ContainerFiles:
    """The archive, export and changes endpoints, on the containers of a context."""

    def __init__(self, ctx: ContainerContext, access: RootfsAccess | None = None) -> None:
        self.ctx = ctx
        self.access = access or ctx.rootfs

    async def _open(self, container: Container) -> Root:
        return await asyncio.to_thread(self.access.open, container)

    def _located(self, root: Root, ref: str, path: str) -> Located:
        try:
            return locate(root.fd, path)
        except FileNotFoundError:
            raise FileNotInContainer(path, ref) from None
        except OSError as exc:
            raise SystemError_(f"lstat {absolute(path)}: "
                               f"{os.strerror(exc.errno or errno.EIO).lower()}") from exc

    async def stat(self, ref: str, path: str) -> PathStat:
        container = self.ctx.get(ref)
        root = await self._open(container)

        def work() -> PathStat:
            located = self._located(root, ref, path)
            try:
                return _stat_of(root.fd, located)
            finally:
                located.close()

        try:
            return await asyncio.to_thread(work)
        finally:
            root.close()

    async def archive(self, ref: str, path: str) -> tuple[PathStat, AsyncIterator[bytes]]:
        """Stat now (errors before any byte is sent), stream the tar afterwards."""
        container = self.ctx.get(ref)
        root = await self._open(container)
        try:
            located = await asyncio.to_thread(self._located, root, ref, path)
        except BaseException:
            root.close()
            raise
        try:
            stat_ = await asyncio.to_thread(_stat_of, root.fd, located)
        except BaseException:
            located.close()
            root.close()
            raise
        self.ctx.event(container, "archive-path")
        return stat_, iterate_in_thread(lambda: _archive_chunks(root, located))

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        container = self.ctx.get(ref)
        root = await self._open(container)
        self.ctx.event(container, "export")
        return iterate_in_thread(lambda: _export_chunks(root))

    async def changes(self, ref: str) -> list[Change]:
        """``docker diff`` (from the writable layer; no event, as dockerd)."""
        container = self.ctx.get(ref)
        layer = container.rw_layer
        if layer is None:
            return []
        return await asyncio.to_thread(changes, layer.upperdir, layer.lowerdirs)

    async def extract(self, ref: str, path: str, body: AsyncReadable,
                      no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        """Unpack the tar in ``body`` (possibly compressed) into directory ``path``."""
        container = self.ctx.get(ref)
        root = await self._open(container)
        try:
            dest_fd, dest = await asyncio.to_thread(self._destination, root, container, ref, path)
            owner = None
            if copy_uid_gid and container.config.user:
                # dockerd's tarCopyOptions: without a configured user the archive's owners stay
                owner = await asyncio.to_thread(_container_user, root.fd, container.config.user)
            reader = BlockingReader(body, asyncio.get_running_loop())
            options = ExtractOptions(whiteouts=WhiteoutMode.DELETE, preserve_owner=owner is None,
                                     no_overwrite_dir_non_dir=no_overwrite_dir_non_dir)

            def work() -> None:
                names: list[str] = []
                try:
                    _kind, chunks = decompressed_chunks(reader)
                    extract_chunks(guarded(chunks, dest, names), dest_fd, options)
                    if owner is not None:
                        _chown_members(dest_fd, names, *owner)
                except (ArchiveError, MalformedArchive) as exc:
                    raise _as_dockerd(exc, dest) from exc
                finally:
                    os.close(dest_fd)

            try:
                await asyncio.to_thread(work)
            finally:
                reader.close()
        finally:
            root.close()
        self.ctx.event(container, "extract-to-dir")

    def _destination(self, root: Root, container: Container, ref: str,
                     path: str) -> tuple[int, str]:
        """(directory fd, its resolved container path) for PUT, with dockerd's checks."""
        abs_path = absolute(path)
        try:
            fd = open_dir(root.fd, abs_path)
        except FileNotFoundError:
            raise FileNotInContainer(path, ref) from None
        except NotADirectoryError:
            try:
                os.close(open_path(root.fd, abs_path))
            except OSError as exc:
                raise SystemError_(f"lstat {abs_path}: not a directory") from exc
            raise InvalidParameter("extraction point is not a directory") from None
        except OSError as exc:
            raise SystemError_(f"lstat {abs_path}: "
                               f"{os.strerror(exc.errno or errno.EIO).lower()}") from exc
        try:
            resolved = resolve_in_scope(root.fd, abs_path)
            _check_writable(container, resolved)
        except BaseException:
            os.close(fd)
            raise
        return fd, resolved


_OVERWRITE = re.compile(r"^cannot overwrite (directory|non-directory) '(.*)' with (non-directory|directory)$")
_DOCKERD_PREFIX = "Error processing tar file(exit status 1): "


def _as_dockerd(exc: ArchiveError | MalformedArchive, dest: str) -> ArchiveError:
    """The extractor's refusals in the words dockerd's untar child uses for docker cp
    (always a 500 there, unreadable input included)."""
    text = str(exc)
    if isinstance(exc, MalformedArchive):
        return ArchiveError(_DOCKERD_PREFIX + text)
    if text.startswith(_DOCKERD_PREFIX):
        return exc
    match = _OVERWRITE.match(text)
    if match:
        what, path, other = match.groups()
        path = (dest.rstrip("/") + path) if dest != "/" else path
        return ArchiveError(f"{_DOCKERD_PREFIX}cannot overwrite {what} {go_quote(path)} "
                            f"with {other} {go_quote(dest)}")
    if text.startswith("Error processing tar file: "):
        return ArchiveError(_DOCKERD_PREFIX + text[len("Error processing tar file: "):])
    return exc


def _container_user(root_fd: int, user: str) -> tuple[int, int]:
    """(uid, gid) of ``user`` from the container's own /etc/passwd and /etc/group, read as
    data below the root fd (no NSS, nothing loaded from the container: CVE-2019-14271)."""
    from runtime.linux.users import UserError, parse_group, parse_passwd, resolve_user

    def read(name: str) -> bytes | None:
        try:
            fd = _sc_open(root_fd, name)
        except OSError:
            return None
        try:
            return os.read(fd, 4 << 20)
        finally:
            os.close(fd)

    passwd, group = read("etc/passwd"), read("etc/group")
    try:
        found = resolve_user(user, (), parse_passwd(passwd) if passwd is not None else None,
                             parse_group(group) if group is not None else None)
    except UserError as exc:
        raise SystemError_(str(exc)) from exc
    return found.uid, found.gid


def _sc_open(root_fd: int, rel_path: str) -> int:
    from runtime.containers.cpath import RESOLVE, _sc

    return _sc.openat2(root_fd, rel_path, os.O_RDONLY, 0, RESOLVE)


def _chown_members(dest_fd: int, names: list[str], uid: int, gid: int) -> None:
    """Give every extracted member to (uid, gid), fd-relative and without following links."""
    from runtime.containers.cpath import RESOLVE, _sc

    for name in dict.fromkeys(n for n in names if n):
        parent, _, base = name.rpartition("/")
        try:
            pfd = _sc.openat2(dest_fd, parent or ".", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
        except OSError:
            continue  # removed again by a later member (whiteouts)
        try:
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        finally:
            os.close(pfd)


def _check_writable(container: Container, resolved: str) -> None:
    """dockerd: a path in a volume needs a read-write volume; elsewhere, a read-write rootfs."""
    best = None
    for mount in container.mount_points:
        dest = mount.destination.rstrip("/") or "/"
        if resolved == dest or resolved.startswith(dest.rstrip("/") + "/"):
            if best is None or len(dest) > len(best.destination):
                best = mount
    if best is not None:
        if not best.rw:
            raise InvalidParameter("mounted volume is marked read-only")
        return
    if container.host_config.readonly_rootfs:
        raise InvalidParameter("container rootfs is marked read-only")


__all__ = ["ContainerFiles", "PathStat", "FileNotInContainer"]
