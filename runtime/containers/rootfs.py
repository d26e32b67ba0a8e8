"""A directory fd on a container's root filesystem, for ``docker cp``, export and diff.

This is the ``docker cp`` CVE surface (CVE-2018-15664 symlink-exchange TOCTOU,
CVE-2019-14271 code loaded from the container, and the 2026 regressions of both), so the
rules are strict and the same for every caller:

* **Never a host path into the container.** Callers get an fd on the container's ``/`` and
  resolve everything below it with ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` or
  with the archive package's :class:`~runtime.archive.rootfd.RootFD` walk. Both treat the fd
  as ``/``: ``..``, absolute symlinks and ``/proc/<pid>/root``-style magic links planted by
  the container resolve inside it, and a component the container swaps for a symlink
  between two of our steps can only send us somewhere else *inside* the same root. No path
  is resolved first and used later.
* **Nothing from the container runs.** No binaries (decompression is in-process, before
  anything touches the container), no NSS: owners are numbers, ``/etc/passwd`` is data.

Running container: its rootfs is mounted only inside its own mount namespace. We open
``/proc/<pid>`` as a directory fd, check *through that fd* that the process is in this
container's cgroup (so a recycled pid cannot hand us the host's root), and open ``root``
relative to it. The result is the container's own view: its volumes, binds and
``/etc/hosts`` are there (as dockerd shows them to ``docker cp``), and so are ``/proc``,
``/sys`` and the other kernel filesystems, which :class:`Root` lists in ``pseudo_devs`` so
archive walks do not descend into them (dockerd's view has empty directories there).
Mounting the overlay a second time instead would be unsafe: two overlay mounts sharing
one upper directory are undefined behaviour, and joining the container's namespaces
would put a host process (and the CPython binary) where the container can reach it.

Stopped container: its overlay is mounted on the writable layer's reserved mountpoint
(below the 0700 data root, made private so nothing propagates), opened, and detached at
once with ``MNT_DETACH``: from then on it exists only through our fd, visible in no mount
namespace, and goes away with the last fd. A container with binds or volumes gets them
bound onto that view first (mount targets pinned by fd, read-only ones remounted
read-only), as dockerd mounts them for ``docker cp``; since a lazily detached tree loses
its submounts, that tree stays attached (still only below the 0700 data root) until the
last user is done. Concurrent users share one mount, so the upper directory is never
mounted twice; :meth:`RootfsAccess.busy` lets the container service hold a start back.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from runtime.containers.model import Container
from runtime.errors import Conflict, SystemError_
from runtime.linux import syscalls as S

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: kernel filesystems whose content is never archived (dockerd's view: empty directories)
PSEUDO_FS = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs",
    "tracefs", "bpf", "configfs", "fusectl", "pstore", "binfmt_misc", "efivarfs",
    "selinuxfs", "nsfs", "hugetlbfs", "autofs", "rpc_pipefs",
})


@dataclass(slots=True)
class Root:
    """An open ``O_RDONLY | O_DIRECTORY`` fd on the container's ``/``; close it when done.

    ``pseudo_devs``: st_dev of kernel filesystems (never descend), ``tmpfs_devs``: st_dev of
    tmpfs mounts (descend only when the walk starts inside one). Both empty for a stopped
    container."""

    fd: int
    running: bool
    pseudo_devs: frozenset[int] = frozenset()
    tmpfs_devs: frozenset[int] = frozenset()
    _release: object = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self.fd)
        release = self._release
        if callable(release):
            release()

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_mount_devs(mountinfo: str) -> tuple[frozenset[int], frozenset[int]]:
    """(pseudo fs devices, tmpfs devices) from a mountinfo text."""
    pseudo: set[int] = set()
    tmpfs: set[int] = set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if not sep or len(fields) < 3 or not rfields:
            continue
        major, _, minor = fields[2].partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        dev = os.makedev(int(major), int(minor))
        if rfields[0] in PSEUDO_FS:
            pseudo.add(dev)
        elif rfields[0] in ("tmpfs", "devtmpfs", "ramfs"):
            tmpfs.add(dev)
    return frozenset(pseudo), frozenset(tmpfs)


def _read_at(dir_fd: int, name: str, limit: int = 1 << 20) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)


def in_container_cgroup(proc_cgroup: str, container_id: str) -> bool:
    """True when a ``/proc/<pid>/cgroup`` text puts the process in ``container_id``'s cgroup
    (``.../<id>`` with the cgroupfs driver, ``.../docker-<id>.scope`` with systemd's)."""
    names = (container_id, f"docker-{container_id}.scope")
    for line in proc_cgroup.splitlines():
        path = line.split(":", 2)[-1]
        if any(name in path.split("/") for name in names):
            return True
    return False


def open_running_root(pid: int, container_id: str) -> Root:
    """The root of running container ``container_id`` whose init is ``pid`` (see module doc)."""
    try:
        proc = os.open(f"/proc/{pid}", DIR_FLAGS)
    except FileNotFoundError:
        raise Conflict(f"Container {container_id} is not running") from None
    try:
        # through the /proc/<pid> fd: if the pid was recycled, these reads fail (ESRCH)
        # instead of describing another process
        if not in_container_cgroup(_read_at(proc, "cgroup"), container_id):
            raise SystemError_(f"process {pid} is not in the cgroup of container {container_id}")
        pseudo, tmpfs = parse_mount_devs(_read_at(proc, "mountinfo", 8 << 20))
        fd = os.open("root", DIR_FLAGS, dir_fd=proc)
    except ProcessLookupError:
        raise Conflict(f"Container {container_id} is not running") from None
    finally:
        os.close(proc)
    return Root(fd, True, pseudo, tmpfs)


@dataclass(slots=True)
class _Shared:
    fd: int
    attached: Path | None = None  # mountpoint to detach at the end (trees with submounts)
    users: int = 0


class RootfsAccess:
    """Opens container roots; stopped containers share one detached overlay mount each.

    Blocking (mounts, file system calls): call from a worker thread."""

    def __init__(self, syscalls: S.Syscalls | None = None) -> None:
        self.sc: S.Syscalls = syscalls if syscalls is not None else S.LinuxSyscalls()
        self._lock = threading.Lock()
        self._shared: dict[str, _Shared] = {}

    def busy(self, container_id: str) -> bool:
        """True while a stopped container's rootfs is open (its start must wait)."""
        with self._lock:
            return container_id in self._shared

    def open(self, container: Container) -> Root:
        state = container.state
        if state.running and state.pid:
            return open_running_root(state.pid, container.id)
        return self._open_stopped(container)

    def _open_stopped(self, container: Container) -> Root:
        with self._lock:
            shared = self._shared.get(container.id)
            if shared is None:
                shared = _Shared(*_mount_private(self.sc, container))
                self._shared[container.id] = shared
            shared.users += 1
            fd = os.dup(shared.fd)
        return Root(fd, False, _release=lambda: self._release(container.id))

    def _release(self, container_id: str) -> None:
        with self._lock:
            shared = self._shared.get(container_id)
            if shared is None:
                return
            shared.users -= 1
            if shared.users <= 0:
                del self._shared[container_id]
                os.close(shared.fd)
                if shared.attached is not None:
                    self.sc.umount2(str(shared.attached), S.MNT_DETACH)


def _bind_points(container: Container) -> list[tuple[str, str, bool, bool]]:
    """(source, destination, read-write, is a directory) of the binds and volumes to show,
    parents first (dockerd's sortMounts)."""
    points = []
    for m in container.mount_points:
        if m.type not in ("bind", "volume") or not m.source or not m.destination:
            continue
        try:
            st = os.stat(m.source)
        except OSError:
            continue  # a bind source that went away: nothing to show there
        points.append((m.source, m.destination, m.rw, stat.S_ISDIR(st.st_mode)))
    return sorted(points, key=lambda p: len([c for c in p[1].split("/") if c]))


def _mount_private(sc: S.Syscalls, container: Container) -> tuple[int, Path | None]:
    """Mount the container's overlay (plus binds/volumes), open it; detach it at once when
    there are no submounts (see module doc). Returns (fd, mountpoint still attached)."""
    from runtime.containers.spec import rootfs_spec
    from runtime.linux import mounts as M
    from runtime.storage.snapshots import perform_mount

    layer = container.rw_layer
    if layer is None:
        raise Conflict(f"container {container.id} has no writable layer")
    target = Path(layer.upperdir).parent / "merged"
    try:
        st = os.stat(target, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(target, 0o700)
        st = os.stat(target, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        raise SystemError_(f"mount point of container {container.id} is not a directory")
    perform_mount(rootfs_spec(layer, False).mount, target, sc)
    points = _bind_points(container)
    try:
        sc.mount(None, str(target), None, S.MS_REC | S.MS_PRIVATE, None)
        fd = os.open(target, DIR_FLAGS | os.O_NOFOLLOW)
        try:
            for source, destination, rw, is_dir in points:
                flags = S.MS_BIND | S.MS_REC | (0 if rw else S.MS_RDONLY)
                M.mount_at(sc, fd, destination, source, None, M.MountOptions(flags, 0, ""),
                           is_dir=is_dir)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        sc.umount2(str(target), S.MNT_DETACH)
        raise
    if points:
        return fd, target
    sc.umount2(str(target), S.MNT_DETACH)
    return fd, None


__all__ = ["Root", "RootfsAccess", "PSEUDO_FS", "open_running_root", "parse_mount_devs",
           "in_container_cgroup"]
