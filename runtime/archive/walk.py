"""The directory-tree walk under every tar writer (layers, ``docker cp``, export).

fd-relative, never following symlinks, children in byte-wise name order, depth-first
with an explicit stack (deep trees need no recursion). Each directory is yielded before
its contents; whether the walk descends into it is the caller's ``descend`` hook. Every
fd the walk opens is closed by the time it ends or is closed early; the root fd stays
the caller's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from runtime.archive.rootfd import DIR_FLAGS


@dataclass(frozen=True, slots=True)
class WalkEntry:
    """One name below the root. ``member`` is ``prefix`` + its relative path (no trailing
    '/'); ``dir_fd`` is the parent directory, ``name`` the entry in it. For a directory
    the walk descends into, ``fd`` is the directory itself (else None). Both fds are
    valid only until the walk is resumed."""

    member: str
    dir_fd: int
    name: str
    st: os.stat_result
    fd: int | None = None


def sorted_names(fd: int) -> list[str]:
    """The names in directory ``fd`` in byte-wise order (Go's sort of the raw names)."""
    return sorted(os.listdir(fd), key=os.fsencode)


def walk(root_fd: int, prefix: str = "",
         descend: Callable[[WalkEntry], bool] | None = None,
         skip_vanished: bool = False) -> Generator[WalkEntry, None, None]:
    """Every name below ``root_fd`` (see module docs). ``descend`` (default: always) says
    whether to enter a directory. With ``skip_vanished`` (a live tree), names removed
    while walking and directories that cannot be opened are skipped (the directory is
    still yielded, with ``fd`` None); otherwise those errors propagate."""
    # explicit stack of (dir fd, member prefix, remaining names)
    stack: list[tuple[int, str, Iterator[str]]] = [(root_fd, prefix, iter(sorted_names(root_fd)))]
    try:
        while stack:
            dfd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if dfd != root_fd:
                    os.close(dfd)
                continue
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                if skip_vanished:
                    continue
                raise
            member = rel + name
            entry = WalkEntry(member, dfd, name, st)
            if stat.S_ISDIR(st.st_mode) and (descend is None or descend(entry)):
                try:
                    sub = os.open(name, DIR_FLAGS, dir_fd=dfd)
                except OSError:
                    if not skip_vanished:
                        raise
                else:
                    try:
                        children = sorted_names(sub)
                    except BaseException:
                        os.close(sub)
                        raise
                    # on the stack before it is yielded, so an early close closes it too
                    stack.append((sub, member + "/", iter(children)))
                    entry = WalkEntry(member, dfd, name, st, sub)
            yield entry
    finally:
        for dfd, _rel, _names in stack:
            if dfd != root_fd:
                os.close(dfd)


__all__ = ["WalkEntry", "walk", "sorted_names"]
