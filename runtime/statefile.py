"""Crash-safe state on disk: every store writes through these helpers.

A write goes to a temporary file in the same directory, is fsynced, renamed over the
target, and the directory is fsynced, so after a crash a reader sees either the old or the
new content, never a torn file. Records rewritten on every state transition (a container's
config.v2.json, a sandbox) skip the directory fsync, as dockerd's atomic writer does: it
only makes the rename itself survive a power loss, and the daemon reconciles those records
with what is running when it starts; the file's own fsync, which keeps it whole, stays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o600, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably (the rename too, unless
    ``sync_dir`` is false)."""
    import tempfile  # here, not at import: the supervisor loads this module (tempfile ~1 MB)

    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode)
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    if sync_dir:
        fsync_dir(directory)


def write_json_atomic(path: Path, value: Any, mode: int = 0o600, sync_dir: bool = True) -> None:
    """Serialise ``value`` as compact JSON and write it with :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, json.dumps(value, separators=(",", ":")).encode(), mode, sync_dir)


def read_json(path: Path) -> Any:
    """Read a JSON state file written by :func:`write_json_atomic`."""
    with open(path, "rb") as f:
        return json.loads(f.read())


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and force mode 0700 on it, as dockerd does for its roots."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
