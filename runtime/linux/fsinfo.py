"""Facts about the filesystem under a directory, measured as dockerd's overlay2 driver does
for ``docker info``'s ``DriverStatus``: the backing filesystem (``statfs(2)``'s magic,
named like moby's ``fstype.FsNames``), whether ``readdir`` reports entry types (d_type,
which overlayfs needs), and the overlay module's defaults that our mounts inherit (they
pass no ``metacopy=`` option).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)

# moby daemon/internal/fstype: statfs f_type -> the name docker info shows
FS_NAMES: dict[int, str] = {
    0x61756673: "aufs",
    0x9123683E: "btrfs",
    0x28CD3D45: "cramfs",
    0xF15F: "ecryptfs",
    0xEF53: "extfs",
    0xF2F52010: "f2fs",
    0x65735546: "fuse",
    0x47504653: "gpfs",
    0x72B6: "jffs2",
    0x3153464A: "jfs",
    0x6969: "nfs",
    0x794C7630: "overlayfs",
    0x858458F6: "ramfs",
    0x52654973: "reiserfs",
    0x517B: "smb",
    0x73717368: "squashfs",
    0x01021994: "tmpfs",
    0xA501FCF5: "vxfs",
    0x58465342: "xfs",
    0x2FC12FC1: "zfs",
}
UNKNOWN_FS = "<unknown>"
_DT_UNKNOWN = 0
_DIRENT_HEADER = 19  # d_ino (8), d_off (8), d_reclen (2), d_type (1); then the name


def fs_magic(path: Path) -> int:
    """``statfs(path).f_type`` (an unsigned 32-bit magic)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if _libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def backing_filesystem(path: Path) -> str:
    return FS_NAMES.get(fs_magic(path), UNKNOWN_FS)


def supports_d_type(path: Path) -> bool:
    """Create a file in a fresh directory under ``path`` and read its entry back with
    ``getdents64``: True when the filesystem fills in the entry's type (moby's
    ``fsutils.SupportsDType``)."""
    with tempfile.TemporaryDirectory(prefix="d_type-", dir=path) as probe:
        Path(probe, "file").touch()
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            buf = ctypes.create_string_buffer(4096)
            while True:
                n = _libc.getdents64(fd, buf, len(buf))
                if n < 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), probe)
                if n == 0:
                    return False
                data = buf.raw[:n]
                offset = 0
                while offset < n:
                    reclen = int.from_bytes(data[offset + 16:offset + 18], sys.byteorder)
                    d_type = data[offset + 18]
                    name = data[offset + _DIRENT_HEADER:offset + reclen].split(b"\0", 1)[0]
                    if name == b"file":
                        return d_type != _DT_UNKNOWN
                    offset += reclen
        finally:
            os.close(fd)


def overlay_parameter(name: str, sys_root: Path = Path("/sys")) -> bool:
    """A boolean parameter of the overlay module (``Y``/``N``); False when the module or
    the parameter does not exist (an older kernel: the feature is off)."""
    try:
        return (sys_root / "module/overlay/parameters" / name).read_text().strip() == "Y"
    except OSError:
        return False


__all__ = ["FS_NAMES", "UNKNOWN_FS", "fs_magic", "backing_filesystem", "supports_d_type",
           "overlay_parameter"]
