"""Copy-up: a new, empty volume gets the image's content at its mount point.

dockerd does this at container create for every volume mount that allows it (not
``nocopy``, not ``--volumes-from``), and only when the volume is empty. The copy keeps
ownership, modes, timestamps, extended attributes, symlinks, device nodes, FIFOs and hard
links, and the source directory's own owner and mode become the volume root's.

Both trees are walked with directory file descriptors and nothing is ever followed: the
source is the image (read-only view) and the destination may be a named volume another
container can write to while we copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from runtime.archive.rootfd import discard_path
from runtime.errors import SystemError_
from runtime.linux import syscalls as S
from runtime.linux.mounts import mount_layer_in_thread
from runtime.volumes.local import SCRATCH_PREFIX
from runtime.spec.model import LayerMount
from runtime.storage.snapshots import unmount

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_BENEATH = S.RESOLVE_BENEATH | S.RESOLVE_NO_SYMLINKS | S.RESOLVE_NO_MAGICLINKS
_IGNORED_XATTR_ERRORS = {errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP, errno.ENODATA}


@contextlib.contextmanager
def rootfs_view(sc: S.Syscalls, mount: LayerMount, scratch_parent: Path) -> Iterator[int]:
    """The container's root filesystem (``mount``, the layer store's description of it)
    mounted at a private scratch directory, as an open directory fd (O_PATH). dockerd
    mounts the container's rootfs for this too. A rootfs without image layers (a bind
    mount) is its upper directory itself: opened, not mounted."""
    if mount.type == "bind":
        fd = os.open(mount.source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    target = scratch_parent / f"{SCRATCH_PREFIX}{secrets.token_hex(8)}"
    target.mkdir(mode=0o700)
    try:
        mount_layer_in_thread(sc, mount, str(target))
    except OSError as exc:
        os.rmdir(target)
        raise SystemError_(f"error mounting the container's root filesystem: {exc}") from exc
    except BaseException:
        os.rmdir(target)
        raise
    try:
        fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        try:
            # a plain unmount: the container start mounts the same upper/work dirs next,
            # and overlayfs refuses those while another superblock still uses them
            sc.umount2(str(target), 0)
        except OSError:
            unmount(target, detach=True)
        finally:
            discard_path(target)


def stat_in_root(sc: S.Syscalls, root_fd: int, path: str) -> os.stat_result | None:
    """lstat of ``path`` resolved inside ``root_fd`` (symlinks stay inside); None if
    missing."""
    try:
        fd = sc.openat2(root_fd, _rel(path), os.O_PATH | os.O_CLOEXEC, 0,
                        S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def populate(sc: S.Syscalls, root_fd: int, path: str, volume_dir: str) -> bool:
    """Copy the directory at ``path`` (inside the rootfs ``root_fd``) into ``volume_dir``
    when that is empty. Returns whether anything was copied. Missing paths and
    non-directories copy nothing, as with dockerd."""
    dst = os.open(volume_dir, DIR_FLAGS)
    try:
        if os.listdir(dst):
            return False
        try:
            src_path = sc.openat2(root_fd, _rel(path), os.O_PATH | os.O_CLOEXEC, 0,
                                  S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            if not stat.S_ISDIR(os.fstat(src_path).st_mode):
                return False
            src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=src_path)
        finally:
            os.close(src_path)
        try:
            copy_tree(sc, src, dst)
        finally:
            os.close(src)
        return True
    finally:
        os.close(dst)


def copy_tree(sc: S.Syscalls, src: int, dst: int) -> None:
    """Copy the contents of directory ``src`` into directory ``dst`` (both fds), then give
    ``dst`` the metadata of ``src``. Iterative (no recursion limit)."""
    links: dict[tuple[int, int], str] = {}
    # frames: (src dir fd, dst dir fd, relative path of the dst dir, names, stat of src)
    root_st = os.fstat(src)
    stack: list[tuple[int, int, str, Iterator[str], os.stat_result]] = [
        (src, dst, "", iter(sorted(os.listdir(src))), root_st)]
    try:
        while stack:
            s_fd, d_fd, rel_dir, names, dir_st = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                try:
                    _copy_meta_fd(s_fd, d_fd, dir_st)
                finally:
                    if s_fd != src:
                        os.close(s_fd)
                        os.close(d_fd)
                continue
            st = os.stat(name, dir_fd=s_fd, follow_symlinks=False)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(name, 0o700, dir_fd=d_fd)
                child_src = os.open(name, DIR_FLAGS, dir_fd=s_fd)
                try:
                    child_dst = os.open(name, DIR_FLAGS, dir_fd=d_fd)
                except BaseException:
                    os.close(child_src)
                    raise
                stack.append((child_src, child_dst, rel, iter(sorted(os.listdir(child_src))), st))
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                _link(sc, dst, links[key], d_fd, name)
                continue
            if stat.S_ISREG(mode):
                _copy_file(s_fd, d_fd, name, st)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(name, dir_fd=s_fd), name, dir_fd=d_fd)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=d_fd, follow_symlinks=False)
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=d_fd,
                         follow_symlinks=False)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=d_fd)
                _copy_meta_path(s_fd, d_fd, name, st)
            else:
                continue  # sockets are not copied
            if st.st_nlink > 1:
                links[key] = rel
    finally:
        for s_fd, d_fd, _rel_dir, _names, _st in stack:
            if s_fd != src:
                os.close(s_fd)
                os.close(d_fd)


def _copy_file(s_fd: int, d_fd: int, name: str, st: os.stat_result) -> None:
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=s_fd)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                       0o600, dir_fd=d_fd)
        try:
            remaining = st.st_size
            while remaining > 0:
                try:
                    done = os.copy_file_range(fin, fout, min(remaining, 1 << 30))
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                         errno.EOPNOTSUPP):
                        raise
                    done = os.sendfile(fout, fin, None, min(remaining, 1 << 30))
                if done == 0:
                    break
                remaining -= done
            _copy_meta_fd(fin, fout, st)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_meta_fd(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    _copy_xattrs(src_fd, dst_fd)
    os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_meta_path(s_fd: int, d_fd: int, name: str, st: os.stat_result) -> None:
    # device nodes and FIFOs cannot be opened safely: go through an O_PATH fd
    path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d_fd)
    try:
        proc = f"/proc/self/fd/{path_fd}"
        os.chown(proc, st.st_uid, st.st_gid)
        os.chmod(proc, stat.S_IMODE(st.st_mode))
        os.utime(proc, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(path_fd)


def _copy_xattrs(src_fd: int, dst_fd: int) -> None:
    try:
        names = os.listxattr(src_fd)
    except OSError as exc:
        if exc.errno in _IGNORED_XATTR_ERRORS:
            return
        raise
    for attr in names:
        try:
            os.setxattr(dst_fd, attr, os.getxattr(src_fd, attr))
        except OSError as exc:
            if exc.errno not in _IGNORED_XATTR_ERRORS:
                raise


def _link(sc: S.Syscalls, root_fd: int, existing: str, d_fd: int, name: str) -> None:
    parent, _, base = existing.rpartition("/")
    pfd = sc.openat2(root_fd, parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                     _BENEATH)
    try:
        os.link(base, name, src_dir_fd=pfd, dst_dir_fd=d_fd, follow_symlinks=False)
    finally:
        os.close(pfd)


def check_not_file(sc: S.Syscalls, root_fd: int, path: str, shown_root: str) -> None:
    """dockerd refuses an image volume over a non-directory."""
    st = stat_in_root(sc, root_fd, path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise SystemError_(f"cannot mount volume over existing file, file exists "
                               f"{shown_root.rstrip('/')}{path}")


def _rel(path: str) -> str:
    stripped = os.path.normpath("/" + path).lstrip("/")
    return stripped or "."


__all__ = ["rootfs_view", "populate", "copy_tree", "stat_in_root",
           "check_not_file"]
