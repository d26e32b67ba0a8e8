"""The init steps of a container's main process only: namespaces, the rootfs and its
mounts, devices, console, the pause before exec, pivot_root, hostname, sysctls, masked
and read-only paths; interleaved with the shared steps of :mod:`runtime.process.init_steps`.

See :mod:`runtime.process.init`.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.linux import mounts as M
from runtime.linux import syscalls as S
from runtime.process.init_state import InitState, Step
from runtime.process.init_steps import (
    open_console,
    step_bounding_set,
    step_capabilities,
    step_close_fds,
    step_close_inherited,
    step_cwd,
    step_exec,
    step_join_cgroups,
    step_lookup,
    step_no_new_privileges,
    step_oom_score,
    step_prepare,
    step_rlimits,
    step_stdio,
    step_switch_user,
    step_user,
)
from runtime.process.sync import Created
from runtime.spec.model import ContainerSpec


def _ns_steps(spec: ContainerSpec) -> list[Step]:
    def step(st: InitState) -> None:
        # Join before unsharing, and the cgroup namespace last, after the cgroup join
        # (cgroups(7): the new namespace is rooted at the current cgroup).
        for kind in ("net", "ipc", "uts", "mnt", "cgroup"):
            path = spec.namespaces.get(kind, "")
            if kind in spec.namespaces and path:
                fd = st.sc.open(path, os.O_RDONLY)
                try:
                    st.sc.setns(fd, S.NAMESPACE_FLAGS[kind])
                finally:
                    st.sc.close(fd)
        flags = 0
        for kind, path in spec.namespaces.items():
            if path is None and kind != "pid":
                flags |= S.NAMESPACE_FLAGS[kind]
        if flags:
            st.sc.unshare(flags)
    return [("namespaces", step)]


def start_steps(spec: ContainerSpec) -> list[Step]:
    """A container start's steps in order, before the seccomp step is placed among them."""
    proc = spec.process

    def loopback(st: InitState) -> None:
        if "net" in spec.namespaces and spec.namespaces["net"] is None:
            st.sc.link_up("lo")

    def propagation(st: InitState) -> None:
        st.sc.mount(None, "/", None, S.MS_REC | S.MS_PRIVATE, None)

    def rootfs(st: InitState) -> None:
        M.mount_layer(st.sc, spec.rootfs.mount, st.rootfs_mount)
        st.root_fd = st.sc.open(st.rootfs_mount, os.O_PATH | os.O_DIRECTORY)

    def mounts(st: InitState) -> None:
        for m in spec.mounts:
            opts = M.parse_options(m.options)
            if m.type == "cgroup":
                _mount_cgroups(st, m.destination, opts,
                               spec.namespaces.get("cgroup", "") is None)
            elif m.type == "bind" or opts.flags & S.MS_BIND:
                is_dir = stat.S_ISDIR(st.sc.stat(m.source).st_mode)
                M.mount_at(st.sc, st.root_fd, m.destination, m.source, None,
                           M.MountOptions(opts.flags | S.MS_BIND, opts.propagation, ""),
                           is_dir)
            else:
                M.mount_at(st.sc, st.root_fd, m.destination, m.source, m.type, opts)

    def devices(st: InitState) -> None:
        if not any(m.destination == "/dev" and m.type == "tmpfs" for m in spec.mounts):
            return
        dev = M.ensure_dir(st.sc, st.root_fd, "/dev")
        try:
            for d in spec.devices:
                parent = os.path.dirname(M.rel(d.path))
                if parent != "dev":
                    st.sc.close(M.ensure_dir(st.sc, st.root_fd, parent))
                name = os.path.relpath(M.rel(d.path), "dev")
                kind = stat.S_IFCHR if d.type == "c" else stat.S_IFBLK
                try:
                    st.sc.mknodat(dev, name, kind | (d.mode & 0o7777), os.makedev(d.major, d.minor))
                except FileExistsError:
                    continue
                if d.uid or d.gid:
                    st.sc.fchownat(dev, name, d.uid, d.gid)
            links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                     ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
                     ("pts/ptmx", "ptmx")]
            for target, name in links:
                try:
                    st.sc.symlinkat(target, dev, name)
                except FileExistsError:
                    pass
        finally:
            st.sc.close(dev)

    def console(st: InitState) -> None:
        if not proc.tty:
            return
        st.console = open_console(st, st.root_fd)
        target = M.ensure_file(st.sc, st.root_fd, "/dev/console")
        try:
            st.sc.mount(M.fd_path(st.console), M.fd_path(target), None, S.MS_BIND, None)
        finally:
            st.sc.close(target)

    def pause(st: InitState) -> None:
        if spec.pause_before_exec:
            st.channel.send(Created())
            st.channel.wait_resume()

    def pivot_root(st: InitState) -> None:
        # runc's pivot_root(".", ".") dance: no put_old directory needed in the rootfs.
        old_root = st.sc.open("/", os.O_DIRECTORY | os.O_RDONLY)
        try:
            st.sc.fchdir(st.root_fd)
            try:
                st.sc.pivot_root(".", ".")
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # where pivot_root cannot work (the root is no mount of its own, e.g. an
                # initramfs), dockerd's DOCKER_RAMDISK way: move the rootfs onto / and chroot
                st.sc.mount(".", "/", None, S.MS_MOVE, None)
                st.sc.chroot(".")
            else:
                st.sc.fchdir(old_root)
                st.sc.mount(None, ".", None, S.MS_SLAVE | S.MS_REC, None)
                st.sc.umount2(".", S.MNT_DETACH)
            st.sc.chdir("/")
        finally:
            st.sc.close(old_root)
        st.sc.close(st.root_fd)
        st.root_fd = st.sc.open("/", os.O_PATH | os.O_DIRECTORY)

    def hostname(st: InitState) -> None:
        if spec.namespaces.get("uts", "") is None:
            st.sc.sethostname(spec.hostname)
            if spec.domainname:
                st.sc.setdomainname(spec.domainname)

    def sysctls(st: InitState) -> None:
        for key, value in spec.sysctls.items():
            if "/" in key or ".." in key:
                raise ValueError(f"invalid sysctl {key!r}")
            st.sc.write_file("/proc/sys/" + key.replace(".", "/"), value.encode())

    def readonly_paths(st: InitState) -> None:
        for path in spec.readonly_paths:
            M.bind_readonly(st.sc, st.root_fd, path)

    def masked_paths(st: InitState) -> None:
        if not spec.masked_paths:
            return
        null = M.open_dev_null(st.sc, st.root_fd)
        try:
            for path in spec.masked_paths:
                M.mask(st.sc, st.root_fd, path, null)
        finally:
            st.sc.close(null)

    def readonly_rootfs(st: InitState) -> None:
        if spec.rootfs.readonly:
            flags = st.sc.mount_flags("/")
            st.sc.mount(None, "/", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | flags, None)

    def workdir(st: InitState) -> None:
        # dockerd creates a missing WORKDIR at start; exec does not.
        if proc.cwd and proc.cwd != "/":
            st.sc.close(M.ensure_dir(st.sc, st.root_fd, proc.cwd))
        st.sc.close(st.root_fd)
        st.root_fd = -1

    return [
        ("prepare", step_prepare),
        ("close inherited fds", step_close_inherited),
        ("join cgroups", step_join_cgroups),
        ("oom score", step_oom_score),
        *_ns_steps(spec),
        ("loopback", loopback),
        ("mount propagation", propagation),
        ("rootfs", rootfs),
        ("mounts", mounts),
        ("devices", devices),
        ("console", console),
        ("pause", pause),
        ("pivot_root", pivot_root),
        ("hostname", hostname),
        ("sysctls", sysctls),
        ("readonly paths", readonly_paths),
        ("masked paths", masked_paths),
        ("readonly rootfs", readonly_rootfs),
        ("rlimits", step_rlimits),
        ("stdio", step_stdio),
        ("user", step_user),
        ("workdir", workdir),
        ("bounding set", step_bounding_set),
        ("switch user", step_switch_user),
        ("capabilities", step_capabilities),
        ("no_new_privileges", step_no_new_privileges),
        ("cwd", step_cwd),
        ("lookup", step_lookup),
        ("close fds", step_close_fds),
        ("exec", step_exec),
    ]


def _mount_cgroups(st: InitState, dest: str, opts: M.MountOptions, new_ns: bool) -> None:
    """/sys/fs/cgroup, read-only: the container's own cgroup of every hierarchy."""
    sc = st.sc
    hierarchies = M.parse_mountinfo_cgroups(
        sc.read_file("/proc/self/mountinfo", 4 << 20).decode())
    base = opts.flags & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC)
    ro = opts.flags & S.MS_RDONLY  # --privileged gets a writable /sys/fs/cgroup
    unified = [h for h in hierarchies if h[0] == "/sys/fs/cgroup" and h[1] == "cgroup2"]
    if unified:
        if new_ns:
            M.mount_at(sc, st.root_fd, dest, "cgroup2", "cgroup2", M.MountOptions(base | ro, 0, ""))
        else:
            src = "/sys/fs/cgroup" + st.cgroup_paths.get("", "/")
            M.mount_at(sc, st.root_fd, dest, src, None, M.MountOptions(base | S.MS_BIND | ro, 0, ""))
        return
    M.mount_at(sc, st.root_fd, dest, "tmpfs", "tmpfs", M.MountOptions(base, 0, "mode=755"))
    for mountpoint, fstype, key in hierarchies:
        if mountpoint == "/sys/fs/cgroup" or fstype == "cgroup2":
            continue  # runc's v1 mode leaves the hybrid unified hierarchy out, as dockerd shows
        path = st.cgroup_paths.get(key, "/")
        sub = os.path.join(dest, os.path.relpath(mountpoint, "/sys/fs/cgroup"))
        M.mount_at(sc, st.root_fd, sub, mountpoint + path.rstrip("/"), None,
                   M.MountOptions(base | S.MS_BIND | ro, 0, ""))
    if not ro:
        return
    target = M.open_in_root(sc, st.root_fd, dest)
    try:
        sc.mount(None, M.fd_path(target), None, S.MS_REMOUNT | S.MS_RDONLY | base, "mode=755")
    finally:
        sc.close(target)


__all__ = ["start_steps"]
