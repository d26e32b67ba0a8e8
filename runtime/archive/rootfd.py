"""Directory resolution confined to a root, done in user space with one ``openat`` per step.

This is ``openat2(RESOLVE_IN_ROOT)`` written with ``os.open(..., dir_fd=...)``: every path
component is opened with ``O_NOFOLLOW``; when a component is a symlink its target is
resolved by this code, relative to the root for absolute targets, and ``..`` never climbs
above the root. So a symlink planted by an earlier archive member (or by a container)
can redirect a later member only to another place *inside* the root, exactly what
dockerd achieves by unpacking inside a chroot.

Open directory fds are cached (LRU) by their lexical path, because archive members come in
directory order and most lookups hit the parent of the previous member.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40
CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Dir:
    """An open directory inside the root and its symlink-free path relative to the root."""

    fd: int
    real: str


def clean_member_name(name: str) -> str:
    """A member name as a path relative to the root: like Go's ``filepath.Clean`` joined to
    "/" (what dockerd gets inside its chroot), so ``../x``, ``/x`` and ``a/../x`` are all
    confined. Returns "" for the root itself."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


class RootFD:
    """Resolve and create directories under ``root_fd`` without ever leaving it."""

    def __init__(self, root_fd: int, cache_size: int = CACHE_SIZE) -> None:
        self.root = Dir(root_fd, "")
        self._cache: OrderedDict[str, Dir] = OrderedDict()
        self._cache_size = cache_size
        # fds a caller is still using: never closed by eviction while held
        self._busy: Counter[int] = Counter()
        self._orphans: set[int] = set()

    def close(self) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        """Forget every cached fd (after a directory or symlink was removed or replaced).

        Fds still held through :meth:`hold` stay open until released."""
        for d in self._cache.values():
            self._release_fd(d.fd)
        self._cache.clear()

    def _release_fd(self, fd: int) -> None:
        if self._busy[fd] > 0:
            self._orphans.add(fd)
        else:
            os.close(fd)

    @contextmanager
    def hold(self, *dirs: Dir) -> Iterator[None]:
        """Keep ``dirs`` open while the caller uses their fds."""
        for d in dirs:
            self._busy[d.fd] += 1
        try:
            yield
        finally:
            for d in dirs:
                self._busy[d.fd] -= 1
                if self._busy[d.fd] <= 0:
                    del self._busy[d.fd]
                    if d.fd in self._orphans:
                        self._orphans.discard(d.fd)
                        os.close(d.fd)

    def _put(self, key: str, d: Dir) -> Dir:
        old = self._cache.pop(key, None)
        if old is not None and old.fd != d.fd:
            self._release_fd(old.fd)
        self._cache[key] = d
        excess = len(self._cache) - self._cache_size
        if excess > 0:
            victims: list[str] = []
            for k, v in self._cache.items():
                if len(victims) >= excess or k == key:
                    break
                if not self._busy[v.fd]:
                    victims.append(k)
            for k in victims:
                os.close(self._cache.pop(k).fd)
        return d

    def adopt(self, lexical: str, fd: int, real: str) -> Dir:
        """Cache an fd the caller just opened for directory ``lexical`` (ownership moves)."""
        return self._put(lexical, Dir(fd, real))

    def dir(self, lexical: str, create: bool = False, mode: int = 0o755) -> Dir:
        """The directory at cleaned relative path ``lexical`` (following symlinks in root).

        With ``create``, missing components are made with ``mode`` (dockerd's implied
        directories, 0755 owned by root). Raises ``FileNotFoundError``/``NotADirectoryError``.
        """
        if not lexical:
            return self.root
        hit = self._cache.get(lexical)
        if hit is not None:
            self._cache.move_to_end(lexical)
            return hit
        # iterative (archives may nest thousands of levels): from the deepest cached
        # ancestor down, one openat per component
        parts = lexical.split("/")
        start = len(parts) - 1
        current = self.root
        while start > 0:
            ancestor = self._cache.get("/".join(parts[:start]))
            if ancestor is not None:
                current = ancestor
                break
            start -= 1
        for index in range(start, len(parts)):
            with self.hold(current):
                d = self._step(current, parts[index], create, mode, [MAX_SYMLINKS])
            if d.fd == self.root.fd:
                current = self.root  # a symlink to "/" (never cache, never close the root fd)
                continue
            current = self._put("/".join(parts[: index + 1]), d)
        return current

    def _step(self, parent: Dir, name: str, create: bool, mode: int, budget: list[int]) -> Dir:
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent.fd)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, mode, dir_fd=parent.fd)
            except FileExistsError:
                # raced with a dangling symlink or another creator; re-open decides
                return self._step(parent, name, False, mode, budget)
            made = self._step(parent, name, False, mode, budget)
            os.fchmod(made.fd, mode)  # exactly ``mode``, whatever the process umask
            return made
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", name) from None
            target = os.readlink(name, dir_fd=parent.fd)
            # never create directories through a symlink: a dangling link is an error,
            # as with dockerd's Lstat + MkdirAll inside its chroot
            return self._follow(parent, target, False, mode, budget)
        real = f"{parent.real}/{name}" if parent.real else name
        return Dir(fd, real)

    def _follow(self, base: Dir, target: str, create: bool, mode: int, budget: list[int]) -> Dir:
        budget[0] -= 1
        if budget[0] < 0:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", target)
        stack = [] if target.startswith("/") else ([p for p in base.real.split("/") if p])
        current = self.root if not stack else self.dir("/".join(stack))
        for comp in target.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if stack:
                    stack.pop()
                current = self.dir("/".join(stack))
                continue
            with self.hold(current):
                nxt = self._step(current, comp, create, mode, budget)
            stack = [p for p in nxt.real.split("/") if p]
            # cache the real path so later steps and callers can reuse the fd
            current = self._put(nxt.real, nxt) if nxt.real else self._close_root_dup(nxt)
        if current is self.root or not current.real:
            return self.root
        # hand back an independent fd: the caller caches it under its lexical key
        return Dir(os.dup(current.fd), current.real)

    def _close_root_dup(self, d: Dir) -> Dir:
        if d.fd != self.root.fd:
            os.close(d.fd)
        return self.root

    def parent_of(self, lexical: str, create: bool = False) -> tuple[Dir, str]:
        """(directory holding ``lexical``, final component)."""
        parent_lex, _, name = lexical.rpartition("/")
        return self.dir(parent_lex, create), name


def remove_tree(dir_fd: int, name: str) -> None:
    """Delete ``name`` below ``dir_fd`` (a file, or a directory and everything in it)
    without following symlinks. Iterative, unlike ``shutil.rmtree``, so an archive that
    nests thousands of directories cannot exhaust the interpreter's recursion limit."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    # frames: (parent fd, name in parent, own fd, remaining child names)
    stack: list[tuple[int, str, int, Iterator[str]]] = [(dir_fd, name, top, iter(os.listdir(top)))]
    try:
        while stack:
            parent_fd, dir_name, fd, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                os.close(fd)
                os.rmdir(dir_name, dir_fd=parent_fd)
                continue
            try:
                cst = os.stat(child, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(cst.st_mode):
                sub = os.open(child, DIR_FLAGS, dir_fd=fd)
                stack.append((fd, child, sub, iter(os.listdir(sub))))
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        for _parent, _name, fd, _children in stack:
            os.close(fd)


def remove_path(path: os.PathLike[str] | str) -> None:
    """:func:`remove_tree` for an absolute path; missing paths are fine."""
    parent, name = os.path.split(os.path.abspath(path))
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_tree(pfd, name)
    finally:
        os.close(pfd)


def discard_path(path: os.PathLike[str] | str) -> None:
    """Best-effort :func:`remove_path` (cleanup of staging and deleted directories)."""
    try:
        remove_path(path)
    except OSError:
        pass
