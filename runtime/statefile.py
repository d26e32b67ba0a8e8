"""Crash-safe state on disk: every store writes through these helpers.

A write goes to a temporary file in the same directory, is fsynced, renamed over the
target, and the directory is fsynced, so after a crash a reader sees either the old or the
new content, never a torn file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
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
    fsync_dir(directory)


def write_json_atomic(path: Path, value: Any, mode: int = 0o600) -> None:
    """Serialise ``value`` as compact JSON and write it with :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, json.dumps(value, separators=(",", ":")).encode(), mode)


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
