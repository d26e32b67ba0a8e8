"""The cgroup filesystem: reading and writing control files, and finding the v1 and
hybrid cgroup2 hierarchies in ``/proc/self/mountinfo``.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_value(path: Path) -> str:
    """A control file's content, stripped."""
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def write_value(path: Path, value: str | int) -> None:
    """Write a control file in one write(2), as the kernel wants."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def keyed(text: str) -> dict[str, int]:
    """``key value`` lines (``memory.events``, ``cpu.stat``...) with integer values."""
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def detect_v1_hierarchies(mountinfo: str, root: str = "/sys/fs/cgroup") -> dict[str, str]:
    """{controllers key: mountpoint} of the v1 hierarchies under ``root``."""
    result = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] != "cgroup":
            continue
        mountpoint = fields[4]
        if not mountpoint.startswith(root + "/"):
            continue
        keys = [o for o in rfields[2].split(",") if o not in ("rw", "ro")
                and not o.startswith("release_agent") and o not in (
                    "xattr", "clone_children", "noprefix", "cpuset_v2_mode")]
        result[",".join(keys)] = mountpoint
    return result


def detect_hybrid_unified(mountinfo: str, root: str = "/sys/fs/cgroup") -> str | None:
    """The mountpoint of a cgroup2 hierarchy mounted below ``root`` next to v1
    hierarchies (systemd's ``unified``), or None."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if sep and len(fields) >= 5 and rfields[:1] == ["cgroup2"]:
            if fields[4].startswith(root + "/"):
                return fields[4]
    return None


__all__ = ["read_value", "write_value", "keyed", "detect_v1_hierarchies", "detect_hybrid_unified"]
