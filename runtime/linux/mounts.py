"""Mount helpers for the init steps: OCI mount options, mount targets pinned by fd, and
the one function that mounts a layer stack (:func:`mount_layer`).

The rootfs is hostile while it is being set up (runc CVE-2025-31133 and friends), so a
mount target is never a re-resolved path: it is opened with ``openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS)`` below the root fd, and the mount goes to ``/proc/self/fd/<fd>``.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from dataclasses import dataclass

from runtime.linux import syscalls as S
from runtime.linux.syscalls import Syscalls
from runtime.spec.model import LayerMount

_FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "ro": (False, S.MS_RDONLY), "rw": (True, S.MS_RDONLY),
    "nosuid": (False, S.MS_NOSUID), "suid": (True, S.MS_NOSUID),
    "nodev": (False, S.MS_NODEV), "dev": (True, S.MS_NODEV),
    "noexec": (False, S.MS_NOEXEC), "exec": (True, S.MS_NOEXEC),
    "sync": (False, S.MS_SYNCHRONOUS), "async": (True, S.MS_SYNCHRONOUS),
    "dirsync": (False, S.MS_DIRSYNC), "remount": (False, S.MS_REMOUNT),
    "mand": (False, S.MS_MANDLOCK), "nomand": (True, S.MS_MANDLOCK),
    "noatime": (False, S.MS_NOATIME), "atime": (True, S.MS_NOATIME),
    "nodiratime": (False, S.MS_NODIRATIME), "diratime": (True, S.MS_NODIRATIME),
    "relatime": (False, S.MS_RELATIME), "norelatime": (True, S.MS_RELATIME),
    "strictatime": (False, S.MS_STRICTATIME), "nostrictatime": (True, S.MS_STRICTATIME),
    "nosymfollow": (False, S.MS_NOSYMFOLLOW),
    "bind": (False, S.MS_BIND), "rbind": (False, S.MS_BIND | S.MS_REC),
}
_PROPAGATION: dict[str, int] = {
    "private": S.MS_PRIVATE, "rprivate": S.MS_PRIVATE | S.MS_REC,
    "shared": S.MS_SHARED, "rshared": S.MS_SHARED | S.MS_REC,
    "slave": S.MS_SLAVE, "rslave": S.MS_SLAVE | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE, "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}
RESOLVE = S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS


@dataclass(frozen=True, slots=True)
class MountOptions:
    flags: int
    propagation: int
    data: str


def parse_options(options: tuple[str, ...]) -> MountOptions:
    """Split OCI mount options into mount(2) flags, a propagation change and fs data."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            clear, bit = _FLAG_OPTIONS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _PROPAGATION:
            propagation = _PROPAGATION[opt]
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data))


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def rel(path: str) -> str:
    """A container path as a path relative to the root fd ("/" -> ".")."""
    stripped = os.path.normpath("/" + path).lstrip("/")
    return stripped or "."


def open_in_root(sc: Syscalls, root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    return sc.openat2(root_fd, rel(path), flags, 0, RESOLVE)


def ensure_dir(sc: Syscalls, root_fd: int, path: str, mode: int = 0o755) -> int:
    """Create ``path`` (and parents) below ``root_fd``; return an O_PATH fd on it."""
    parts = [p for p in rel(path).split("/") if p not in ("", ".")]
    current = "."
    for part in parts:
        parent = sc.openat2(root_fd, current, os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
        try:
            sc.mkdirat(parent, part, mode)
        except FileExistsError:
            pass
        finally:
            sc.close(parent)
        current = part if current == "." else f"{current}/{part}"
    return sc.openat2(root_fd, current, os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)


def ensure_file(sc: Syscalls, root_fd: int, path: str) -> int:
    """Create an empty regular file at ``path`` (parents too) unless it exists; O_PATH fd."""
    parent = os.path.dirname(rel(path)) or "."
    sc.close(ensure_dir(sc, root_fd, parent))
    try:
        return sc.openat2(root_fd, rel(path), os.O_PATH, 0, RESOLVE)
    except FileNotFoundError:
        fd = sc.openat2(root_fd, rel(path), os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o755,
                        RESOLVE)
        sc.close(fd)
        return sc.openat2(root_fd, rel(path), os.O_PATH, 0, RESOLVE)


def ensure_target(sc: Syscalls, root_fd: int, path: str, is_dir: bool) -> int:
    return ensure_dir(sc, root_fd, path) if is_dir else ensure_file(sc, root_fd, path)


def mount_at(sc: Syscalls, root_fd: int, dest: str, source: str | None, fstype: str | None,
             opts: MountOptions, is_dir: bool = True) -> None:
    """Mount at ``dest`` (created if missing) with ``opts``; bind mounts get a remount
    for their flags, and propagation is applied last."""
    target = ensure_target(sc, root_fd, dest, is_dir)
    try:
        is_bind = bool(opts.flags & S.MS_BIND)
        if is_bind:
            sc.mount(source, fd_path(target), fstype, opts.flags & (S.MS_BIND | S.MS_REC), None)
        else:
            sc.mount(source, fd_path(target), fstype, opts.flags, opts.data or None)
    finally:
        sc.close(target)
    extra = opts.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)
    if (is_bind and extra) or opts.propagation:
        mounted = open_in_root(sc, root_fd, dest)
        try:
            if is_bind and extra:
                sc.mount(None, fd_path(mounted), None,
                         S.MS_BIND | S.MS_REMOUNT | (opts.flags & S.MS_REC) | extra, None)
            if opts.propagation:
                sc.mount(None, fd_path(mounted), None, opts.propagation, None)
        finally:
            sc.close(mounted)


def bind_readonly(sc: Syscalls, root_fd: int, path: str) -> None:
    """Make ``path`` a read-only bind mount of itself (dockerd's readonly paths)."""
    try:
        fd = open_in_root(sc, root_fd, path)
    except FileNotFoundError:
        return
    try:
        sc.mount(fd_path(fd), fd_path(fd), None, S.MS_BIND | S.MS_REC, None)
    finally:
        sc.close(fd)
    fd = open_in_root(sc, root_fd, path)
    try:
        flags = sc.mount_flags(fd_path(fd))
        sc.mount(None, fd_path(fd), None,
                 S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | flags, None)
    finally:
        sc.close(fd)


def mask(sc: Syscalls, root_fd: int, path: str, null_fd: int) -> None:
    """Hide ``path``: a read-only tmpfs over a directory, /dev/null over anything else."""
    try:
        fd = open_in_root(sc, root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if stat.S_ISDIR(sc.fstat(fd).st_mode):
            sc.mount("tmpfs", fd_path(fd), "tmpfs", S.MS_RDONLY, None)
        else:
            sc.mount(fd_path(null_fd), fd_path(fd), None, S.MS_BIND, None)
    finally:
        sc.close(fd)


def open_dev_null(sc: Syscalls, root_fd: int) -> int:
    """The container's /dev/null, verified to be the null device (runc GHSA-9493-h29p-rfm2)."""
    fd = sc.openat2(root_fd, "dev/null", os.O_PATH, 0,
                    RESOLVE | S.RESOLVE_NO_SYMLINKS)
    st = sc.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        sc.close(fd)
        raise OSError(errno.EPERM, "/dev/null is not the null device")
    return fd


def parse_mountinfo_cgroups(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mountpoint, fstype, controllers key) of every cgroup hierarchy under /sys/fs/cgroup.

    The key matches the middle field of /proc/self/cgroup ("memory", "name=systemd", "" for
    cgroup2)."""
    result = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mountpoint, fstype = fields[4], rfields[0]
        if fstype not in ("cgroup", "cgroup2") or not mountpoint.startswith("/sys/fs/cgroup"):
            continue
        if fstype == "cgroup2":
            key = ""
        else:
            opts = [o for o in rfields[2].split(",") if o not in ("rw", "ro")]
            key = ",".join(o for o in opts if not o.startswith("release_agent")
                           and o not in ("xattr", "clone_children", "noprefix",
                                         "cpuset_v2_mode"))
        result.append((mountpoint, fstype, key))
    return result


def root_is_mount_point(mountinfo: str) -> bool:
    """Whether the calling process's root directory is a mount point (``/proc/self/
    mountinfo`` lists only what is reachable from the root, relative to it: a chroot into a
    plain directory has no ``/`` entry)."""
    return any(len(fields) > 4 and fields[4] == "/"
               for fields in (line.split() for line in mountinfo.splitlines()))


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controllers key: path}."""
    result = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            result[parts[1]] = parts[2]
    return result


def mount_layer(sc: Syscalls, mount: LayerMount, target: str) -> None:
    """Perform the root filesystem mount ``mount`` (a description from the layer store) on
    ``target``: the one function that mounts a layer stack, in the container's init and in
    the daemon (through :func:`mount_layer_in_thread`).

    With ``mount.chdir`` the working directory is that directory for the mount(2) call (the
    kernel resolves relative ``lowerdir`` paths from it) and ``/`` afterwards, whatever
    happens, so no host directory stays the cwd. Only call it where the cwd belongs to the
    caller alone: the container's init, or a thread of its own (``mount_layer_in_thread``).
    """
    opts = parse_options(mount.options)
    fstype = None if opts.flags & S.MS_BIND else mount.type
    if mount.chdir is None:
        sc.mount(mount.source, target, fstype, opts.flags, opts.data or None)
        return
    sc.chdir(mount.chdir)
    try:
        sc.mount(mount.source, target, fstype, opts.flags, opts.data or None)
    finally:
        sc.chdir("/")


def mount_layer_in_thread(sc: Syscalls, mount: LayerMount, target: str) -> None:
    """:func:`mount_layer` from a multi-threaded process (the daemon). A mount that needs a
    working directory runs in a short-lived thread that first unshares its filesystem
    context (``unshare(CLONE_FS)``: cwd, root and umask become that thread's own), so the
    daemon's cwd never changes; other mounts run in the calling thread. Raises ``OSError``."""
    if mount.chdir is None:
        mount_layer(sc, mount, target)
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sc.unshare(S.CLONE_FS)
            mount_layer(sc, mount, target)
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="mount-layer")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


__all__ = ["MountOptions", "parse_options", "fd_path", "rel", "open_in_root", "ensure_dir",
           "ensure_file", "ensure_target", "mount_at", "bind_readonly", "mask",
           "open_dev_null", "mount_layer", "mount_layer_in_thread", "RESOLVE",
           "parse_mountinfo_cgroups", "root_is_mount_point", "parse_proc_cgroup"]
