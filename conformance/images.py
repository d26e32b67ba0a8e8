"""Test images built locally, so the suite never needs a registry.

``busybox_rootfs_tar`` makes a small, deterministic root filesystem from Debian's
busybox-static: ``/bin/busybox`` plus a symlink per applet, ``/etc/passwd`` and ``/etc/group``
with root and nobody, and the empty directories a container expects. Same input binary, same
bytes out, so an imported image gets the same layer diff ID on every engine.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

#: 2000-01-01T00:00:00Z: a fixed mtime for every entry.
FIXED_MTIME = 946684800

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\n"

# path -> mode; parents of applet symlinks are added as 0755 directories.
_DIRS: dict[str, int] = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
}


def find_busybox() -> Path:
    """The static busybox to package: $CONFORMANCE_BUSYBOX or /bin/busybox."""
    return Path(os.environ.get("CONFORMANCE_BUSYBOX", "/bin/busybox"))


def busybox_applets(busybox: Path) -> list[str]:
    """Relative install paths of every applet (``bin/sh``, ``usr/bin/awk`` ...)."""
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    paths = set()
    for line in out.split():
        rel = line.strip().lstrip("/")
        # linuxrc is an initrd entry point, and bin/busybox is the binary itself.
        if rel and "/" in rel and rel != "bin/busybox" and not rel.startswith(".."):
            paths.add(rel)
    return sorted(paths)


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def busybox_rootfs_tar(busybox: Path | None = None) -> bytes:
    """The rootfs tar as bytes (uncompressed, USTAR, entries sorted, parents first)."""
    busybox = busybox or find_busybox()
    binary = busybox.read_bytes()
    applets = busybox_applets(busybox)

    dirs = dict(_DIRS)
    for rel in applets:
        parent = rel.rsplit("/", 1)[0]
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""

    files: dict[str, tuple[int, bytes]] = {
        "bin/busybox": (0o755, binary),
        "etc/passwd": (0o644, PASSWD.encode()),
        "etc/group": (0o644, GROUP.encode()),
    }
    names = sorted({*dirs, *files, *applets})

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            if name in dirs:
                tar.addfile(_info(name + "/", tarfile.DIRTYPE, dirs[name]))
            elif name in files:
                mode, data = files[name]
                tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
            else:
                link = _info(name, tarfile.SYMTYPE, 0o777)
                link.linkname = "/bin/busybox"
                tar.addfile(link)
    return buf.getvalue()


def write_busybox_rootfs(dest: Path, busybox: Path | None = None) -> Path:
    dest.write_bytes(busybox_rootfs_tar(busybox))
    return dest
