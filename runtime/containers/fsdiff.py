"""``docker diff``: what a container changed, from its overlay upper directory.

moby's overlay rules: a 0:0 character device is a deleted path, an opaque directory
(``trusted.overlay.opaque=y``) is reported deleted (its content then shows as added);
anything else is added, unless the path exists in an image layer: then it is modified,
except directories whose size, mode and mtime did not change. An added or deleted path
makes its parent directory "modified" too.

dockerd keeps the mount points it creates at start (``/etc/hosts``, ``/dev/pts``, ...) in
a separate init layer, so they never appear. Here init creates them in the upper
directory: those paths are left out, and so are their parent directories unless something
else below them changed (or their permissions did).

The upper directory is walked with fds (no symlink is followed); image layers are looked
up with ``openat2(RESOLVE_IN_ROOT)`` below each layer directory.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from runtime.containers.cpath import RESOLVE
from runtime.linux import syscalls as S

OPAQUE_XATTR = "trusted.overlay.opaque"
INIT_PATHS = frozenset({"/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                        "/etc/mtab", "/dev", "/dev/pts", "/dev/shm", "/dev/console", "/dev/mqueue",
                        "/proc", "/sys"})
INIT_PARENTS = frozenset({"/etc", "/dev"})
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_sc = S.LinuxSyscalls()


class Kind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: Kind


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


class _Lowers:
    """Image layer directories, top first, opened once."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self.fds: list[int] = []
        for d in dirs:
            try:
                self.fds.append(os.open(d, DIR_FLAGS))
            except OSError:
                continue

    def lstat(self, path: str) -> os.stat_result | None:
        """The topmost layer's entry at container path ``path`` (never followed)."""
        rel = path.lstrip("/")
        for fd in self.fds:
            try:
                found = _sc.openat2(fd, rel, os.O_PATH | os.O_NOFOLLOW, 0, RESOLVE)
            except OSError:
                continue
            try:
                return os.fstat(found)
            finally:
                os.close(found)
        return None

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def _walk(root_fd: int) -> Iterator[tuple[str, os.stat_result, int, str]]:
    """(container path, lstat, parent fd, name) in moby's order (lexical, parents first)."""
    stack: list[tuple[int, str, Iterator[str]]] = [
        (root_fd, "", iter(sorted(os.listdir(root_fd), key=os.fsencode)))]
    try:
        while stack:
            fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if fd != root_fd:
                    os.close(fd)
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            path = f"{prefix}/{name}"
            yield path, st, fd, name
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, DIR_FLAGS, dir_fd=fd)
                stack.append((sub, path, iter(sorted(os.listdir(sub), key=os.fsencode))))
    finally:
        for fd, _prefix, _names in stack:
            if fd != root_fd:
                os.close(fd)


def _same_time(a: int, b: int) -> bool:
    """moby's sameFsTime: equal, or equal seconds when one side has no sub-second part."""
    if a == b:
        return True
    return a // 1_000_000_000 == b // 1_000_000_000 and (
        a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0)


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size == b.st_size and a.st_mode == b.st_mode
            and _same_time(a.st_mtime_ns, b.st_mtime_ns))


def changes(upperdir: str, lowerdirs: Sequence[str]) -> list[Change]:
    """The changes of a writable layer (blocking: run in a thread)."""
    lowers = _Lowers(lowerdirs)
    root = os.open(upperdir, DIR_FLAGS)
    found: list[Change] = []
    changed_dirs: set[str] = set()
    init_parent_modes: dict[str, bool] = {}
    try:
        for path, st, parent_fd, name in _walk(root):
            if path in INIT_PATHS:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            kind: Kind | None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = Kind.DELETED
            elif is_dir and _opaque_at(parent_fd, name):
                kind = Kind.DELETED
            else:
                kind = Kind.ADDED
                lower = lowers.lstat(path)
                if lower is not None:
                    if is_dir and stat.S_ISDIR(lower.st_mode) and _same_dir(st, lower):
                        continue
                    kind = Kind.MODIFIED
                    if path in INIT_PARENTS and is_dir:
                        init_parent_modes[path] = st.st_mode == lower.st_mode
            if is_dir:
                changed_dirs.add(path)
            if kind in (Kind.ADDED, Kind.DELETED):
                parent = os.path.dirname(path)
                if parent not in changed_dirs and parent != "/":
                    found.append(Change(parent, Kind.MODIFIED))
                    changed_dirs.add(parent)
            found.append(Change(path, kind))
    finally:
        os.close(root)
        lowers.close()
    return [c for c in found if not _init_only(c, found, init_parent_modes)]


def _opaque_at(parent_fd: int, name: str) -> bool:
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        return _is_opaque(fd)
    finally:
        os.close(fd)


def _init_only(change: Change, found: list[Change], same_mode: dict[str, bool]) -> bool:
    """A parent of init mount points, modified only because init created them."""
    if change.kind is not Kind.MODIFIED or change.path not in same_mode:
        return False
    if not same_mode[change.path]:
        return False
    prefix = change.path + "/"
    return not any(other.path.startswith(prefix) for other in found)


__all__ = ["Change", "Kind", "changes", "INIT_PATHS"]
