"""Mount targets in a stopped container's upper directory that only the runtime made.

Starting a container creates the targets of its mounts (``/etc/hosts``, ``/proc``,
``/dev/pts`` ...) when the image lacks them; overlayfs records them in the upper
directory, and copies up directories just to hold them. dockerd keeps them in an init
layer below the container's, so they never reach a committed layer; the builder commits
each step's container after :func:`prune_mount_targets`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

OPAQUE_XATTR = "trusted.overlay.opaque"
# mount targets the container runtime creates when an image lacks them
_MOUNT_TARGET_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv")
_MOUNT_TARGET_DIRS = ("dev/pts", "dev/shm", "dev/mqueue", "dev", "proc", "sys", "etc")


def _lstat_below(root: str, rel: str) -> os.stat_result | None:
    """``lstat`` of ``root/rel`` without following any symlink on the way; None when it
    does not exist, and the symlink's own stat when a component is one."""
    current = root
    st: os.stat_result | None = None
    for comp in rel.split("/"):
        current = os.path.join(current, comp)
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return st
    return st


def prune_mount_targets(upper: Path, lowerdirs: Sequence[str]) -> None:
    """Remove what only the runtime's mounts created in a stopped container's upper dir:
    empty placeholder files and directories the image does not have, and directories
    copied up just to hold them."""
    def in_image(rel: str) -> bool:
        return any(_lstat_below(lower, rel) is not None for lower in lowerdirs)

    for rel in _MOUNT_TARGET_FILES:
        path = upper / rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and not in_image(rel):
            os.unlink(path)
    for rel in _MOUNT_TARGET_DIRS:
        path = upper / rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(st.st_mode) or os.listdir(path) or _opaque(path):
            continue
        if not in_image(rel):
            os.rmdir(path)
            continue
        if _same_dir_metadata(st, lowerdirs, rel):
            os.rmdir(path)  # only copied up: the image's own directory shows through


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _same_dir_metadata(st: os.stat_result, lowerdirs: Sequence[str], rel: str) -> bool:
    for lower in lowerdirs:
        low = _lstat_below(lower, rel)
        if low is None:
            continue
        return (stat.S_ISDIR(low.st_mode) and low.st_mode == st.st_mode
                and low.st_uid == st.st_uid and low.st_gid == st.st_gid)
    return False


__all__ = ["prune_mount_targets"]
