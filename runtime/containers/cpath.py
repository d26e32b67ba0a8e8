"""Container paths as dockerd's archive endpoints interpret them, resolved below a root fd.

Path syntax follows dockerd (``filepath.Join("/", path)`` plus
``PreserveTrailingDotOrSeparator``): ``/d/`` and ``/d/.`` mean "the directory, following
a symlink at ``d``", while ``/d`` names ``d`` itself (a symlink is not followed). Every
lookup goes through ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` on the root fd
(see :mod:`runtime.containers.rootfs` for why), or through ``*at`` calls on directory fds
obtained that way; no resolved path string is ever opened again.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from dataclasses import dataclass

from runtime.containers.targuard import go_clean
from runtime.linux import syscalls as S

RESOLVE = S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS
MAX_LINKS = 255

# Go's os.FileMode type bits (what X-Docker-Container-Path-Stat carries in "mode")
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20

_sc = S.LinuxSyscalls()


def go_file_mode(st_mode: int) -> int:
    """A stat mode as Go's ``os.FileMode`` (permission bits plus Go's own type bits)."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    if kind == stat.S_IFDIR:
        mode |= GO_MODE_DIR
    elif kind == stat.S_IFLNK:
        mode |= GO_MODE_SYMLINK
    elif kind == stat.S_IFBLK:
        mode |= GO_MODE_DEVICE
    elif kind == stat.S_IFCHR:
        mode |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif kind == stat.S_IFIFO:
        mode |= GO_MODE_NAMED_PIPE
    elif kind == stat.S_IFSOCK:
        mode |= GO_MODE_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= GO_MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_MODE_STICKY
    return mode


def absolute(path: str) -> str:
    """``PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)``."""
    cleaned = go_clean("/" + path)
    if go_base(cleaned) != "." and go_base(path) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and path.endswith("/"):
        cleaned += "/"
    return cleaned


def go_base(path: str) -> str:
    """Go's ``filepath.Base``."""
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


def go_split(path: str) -> tuple[str, str]:
    """Go's ``filepath.Split``: (everything up to the last slash, the rest)."""
    index = path.rfind("/")
    return path[: index + 1], path[index + 1 :]


def _rel(path: str) -> str:
    stripped = go_clean("/" + path).lstrip("/")
    return stripped or "."


def open_dir(root_fd: int, path: str, flags: int = os.O_RDONLY) -> int:
    """A directory fd for container path ``path`` (every symlink followed, in the root)."""
    for _ in range(16):
        try:
            return _sc.openat2(root_fd, _rel(path), flags | os.O_DIRECTORY, 0, RESOLVE)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:  # a rename raced the lookup: try again
                raise
    raise OSError(errno.EAGAIN, "container path kept changing while being resolved", path)


def open_path(root_fd: int, path: str) -> int:
    """An ``O_PATH`` fd on whatever ``path`` names (every symlink followed, in the root)."""
    return _sc.openat2(root_fd, _rel(path), os.O_PATH, 0, RESOLVE)


def resolve_in_scope(root_fd: int, path: str) -> str:
    """dockerd's ``FollowSymlinkInScope``: the container path ``path`` names once every
    symlink is followed inside the root; missing components are kept as written. Only a
    description (``linkTarget``, volume checks): nothing is ever opened by this string."""
    queue = deque(p for p in path.split("/") if p)
    resolved: list[str] = []
    links = 0
    while queue:
        comp = queue.popleft()
        if comp == ".":
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        try:
            parent = open_dir(root_fd, "/".join(resolved), os.O_PATH)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(comp)
            continue
        try:
            st = os.stat(comp, dir_fd=parent, follow_symlinks=False)
            target = os.readlink(comp, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else None
        except (FileNotFoundError, NotADirectoryError):
            target = None
        finally:
            os.close(parent)
        if target is None:
            resolved.append(comp)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        if target.startswith("/"):
            resolved = []
        queue.extendleft(reversed([p for p in target.split("/") if p]))
    return "/" + "/".join(resolved)


@dataclass(slots=True)
class Located:
    """What a container path names: ``st`` (lstat, or the directory itself for ``/d/``),
    and how to reach it: ``dir_fd`` + ``name`` (``name`` "" when ``dir_fd`` is the object
    itself). ``dir_fd`` belongs to this value: :meth:`close` it."""

    abs_path: str
    dir_fd: int
    name: str
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def close(self) -> None:
        os.close(self.dir_fd)


def locate(root_fd: int, path: str) -> Located:
    """Find ``path`` like dockerd's ``ResolvePath`` + ``Lstat``: the parent directory is
    resolved (symlinks followed), the last element is not. Raises ``FileNotFoundError``,
    ``NotADirectoryError`` and other ``OSError``."""
    abs_path = absolute(path)
    parent, base = go_split(abs_path)
    fd = open_dir(root_fd, parent)
    try:
        if base in ("", "."):
            return Located(abs_path, fd, "", os.fstat(fd))
        st = os.stat(base, dir_fd=fd, follow_symlinks=False)
    except BaseException:
        os.close(fd)
        raise
    return Located(abs_path, fd, base, st)


__all__ = ["go_file_mode", "absolute", "go_base", "go_split", "open_dir", "open_path",
           "resolve_in_scope", "Located", "locate", "RESOLVE"]
