"""The child side of a start or exec: one ordered list of named init steps, then execve.

Runs in a process the supervisor has just forked (already pid 1 of the new pid namespace
when the spec asks for one). Every kernel operation goes through the ``Syscalls`` seam;
every failure is raised as :class:`InitError` naming its step, which the supervisor turns
into ``ExecFailed(step, text)`` and the client into dockerd's ``StartFailed`` message.

Nothing here may load code once the container root is entered (CVE-2019-14271): users
are parsed from /etc/passwd as data, and every module used is imported by the supervisor
before it forks.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.linux import mounts as M
from runtime.linux import seccomp as seccomp_filter
from runtime.linux import syscalls as S
from runtime.linux.syscalls import Syscalls
from runtime.linux.users import ExecUser, UserError, parse_group, parse_passwd, resolve_user
from runtime.process.sync import Channel, Created, PtyMaster
from runtime.spec.defaults import CAPABILITY_NUMBERS, DEFAULT_PATH
from runtime.spec.model import ContainerSpec, ExecSpec, ProcessSpec

MAX_ID_FILE = 4 << 20


class InitError(Exception):
    """A failed init step; ``text`` is the runtime-level reason in runc's wording."""

    def __init__(self, step: str, text: str) -> None:
        super().__init__(f"{step}: {text}")
        self.step = step
        self.text = text


@dataclass(frozen=True, slots=True)
class Stdio:
    """Child-side fds the supervisor prepared (None with a tty: the pty is made inside)."""

    stdin: int | None
    stdout: int | None
    stderr: int | None


@dataclass
class InitState:
    sc: Syscalls
    channel: Channel
    process: ProcessSpec
    stdio: Stdio
    rootfs_mount: str = ""           # mount point for the rootfs (container start only)
    last_cap: int = 40
    init_pid: int = 0                # exec: host pid of the container's init
    cgroup_dirs: tuple[str, ...] = ()
    root_fd: int = -1
    console: int = -1
    cgroup_paths: dict[str, str] = field(default_factory=dict)
    user: ExecUser | None = None
    env: list[str] = field(default_factory=list)
    exe: str = ""
    seccomp: seccomp_filter.CompiledFilter | None = None  # compiled by the supervisor


Step = tuple[str, Callable[[InitState], None]]


def go_error(exc: OSError) -> str:
    """The errno as Go prints it ("no such file or directory")."""
    if exc.errno is None:
        return str(exc)
    text = os.strerror(exc.errno)
    return text[:1].lower() + text[1:]


def run_steps(steps: list[Step], state: InitState) -> None:
    for name, step in steps:
        try:
            step(state)
        except InitError:
            raise
        except UserError as exc:
            raise InitError(name, str(exc)) from exc
        except OSError as exc:
            where = f" {exc.filename}:" if exc.filename else ""
            raise InitError(name, f"error during container init step {name!r}:{where} "
                            f"{go_error(exc)}") from exc
        except (ValueError, KeyError) as exc:
            raise InitError(name, f"error during container init step {name!r}: {exc}") from exc


# ---- steps shared by start and exec ---------------------------------------------------

def step_prepare(st: InitState) -> None:
    # Non-dumpable before touching any container namespace: /proc/<pid>/exe of this Python
    # process must not be reachable from inside (CVE-2019-5736). execve resets it.
    st.sc.prctl(S.PR_SET_DUMPABLE, 0)
    st.sc.setsid()
    st.sc.umask(0)


def step_close_inherited(st: InitState) -> None:
    # Drop every fd inherited from the supervisor now, not only at exec, so that no host
    # directory fd is reachable through /proc/self/fd while in the container (CVE-2024-21626).
    keep = [st.channel.fileno()]
    keep += [fd for fd in (st.stdio.stdin, st.stdio.stdout, st.stdio.stderr) if fd is not None]
    st.sc.close_fds_from(3, keep)


def step_join_cgroups(st: InitState) -> None:
    for directory in st.cgroup_dirs:
        procs = os.path.join(directory, "cgroup.procs")
        st.sc.write_file(procs, b"0")
    st.cgroup_paths = M.parse_proc_cgroup(
        st.sc.read_file("/proc/self/cgroup", 1 << 16).decode())


def step_oom_score(st: InitState) -> None:
    if st.process.oom_score_adj is not None:
        st.sc.write_file("/proc/self/oom_score_adj", str(st.process.oom_score_adj).encode())


def step_rlimits(st: InitState) -> None:
    for name, soft, hard in st.process.rlimits:
        st.sc.setrlimit(name, soft, hard)


def _open_console(st: InitState, root_fd: int) -> int:
    """Allocate a pty in the container's devpts; send the master to the supervisor."""
    master = st.sc.openat2(root_fd, "dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY, 0,
                           M.RESOLVE | S.RESOLVE_NO_SYMLINKS)
    try:
        if not stat.S_ISCHR(st.sc.fstat(master).st_mode):
            raise OSError(errno.EPERM, "/dev/pts/ptmx is not a character device")
        st.sc.ioctl(master, S.TIOCSPTLCK, struct.pack("i", 0))
        slave = st.sc.ioctl(master, S.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        assert isinstance(slave, int)
        if st.process.console_size:
            rows, cols = st.process.console_size
            st.sc.ioctl(slave, S.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        st.channel.send(PtyMaster(master))
    finally:
        st.sc.close(master)
    return slave


def step_stdio(st: InitState) -> None:
    if st.process.tty:
        st.sc.ioctl(st.console, S.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            st.sc.dup2(st.console, target)
        if st.console > 2:
            st.sc.close(st.console)
        return
    for fd, target in ((st.stdio.stdin, 0), (st.stdio.stdout, 1), (st.stdio.stderr, 2)):
        if fd is not None and fd != target:
            st.sc.dup2(fd, target)


def step_user(st: InitState) -> None:
    passwd = group = None
    try:
        passwd = parse_passwd(st.sc.read_file("/etc/passwd", MAX_ID_FILE))
    except (FileNotFoundError, NotADirectoryError):
        pass
    try:
        group = parse_group(st.sc.read_file("/etc/group", MAX_ID_FILE))
    except (FileNotFoundError, NotADirectoryError):
        pass
    spec = st.process.user
    st.user = resolve_user(spec.user, spec.additional_groups, passwd, group)
    env = list(st.process.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={st.user.home}")
    st.env = env


def _capability_mask(names: tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        key = name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
        if key not in CAPABILITY_NUMBERS:
            raise ValueError(f"unknown capability {name!r}")
        mask |= 1 << CAPABILITY_NUMBERS[key]
    return mask


def step_bounding_set(st: InitState) -> None:
    keep = _capability_mask(st.process.capabilities)
    for cap in range(st.last_cap + 1):
        if not keep >> cap & 1:
            st.sc.prctl(S.PR_CAPBSET_DROP, cap)
    # Keep permitted caps across setuid so the final capset can still grant them (runc).
    st.sc.prctl(S.PR_SET_KEEPCAPS, 1)


def step_switch_user(st: InitState) -> None:
    assert st.user is not None
    st.sc.setgroups(st.user.sgids)
    st.sc.setresgid(st.user.gid)
    st.sc.setresuid(st.user.uid)


def step_capabilities(st: InitState) -> None:
    st.sc.prctl(S.PR_SET_KEEPCAPS, 0)
    _, permitted, _ = st.sc.capget()
    keep = _capability_mask(st.process.capabilities) & permitted
    st.sc.capset(keep, keep, 0)
    st.sc.prctl(S.PR_CAP_AMBIENT, S.PR_CAP_AMBIENT_CLEAR_ALL)


def step_no_new_privileges(st: InitState) -> None:
    if st.process.no_new_privileges:
        st.sc.prctl(S.PR_SET_NO_NEW_PRIVS, 1)


def step_seccomp(st: InitState) -> None:
    if st.seccomp is not None:
        seccomp_filter.load(st.sc, st.seccomp)


def _with_seccomp(steps: list[Step], no_new_privileges: bool) -> list[Step]:
    """``steps`` with the seccomp step in runc's place.

    Loading a filter needs CAP_SYS_ADMIN unless no_new_privs is set. Without it (Docker's
    default) the filter goes in before the bounding set, user and capabilities change,
    while init still has every capability; those steps' syscalls (prctl, setgroups,
    setres[ug]id, capset) are then filtered too, as under runc. With no_new_privs the
    filter goes in last, right before execve, so the fewest syscalls run under it.
    """
    anchor = "exec" if no_new_privileges else "bounding set"
    at = next(i for i, (name, _) in enumerate(steps) if name == anchor)
    return [*steps[:at], ("seccomp", step_seccomp), *steps[at:]]


def step_cwd(st: InitState) -> None:
    cwd = st.process.cwd or "/"
    try:
        st.sc.chdir(cwd)
    except OSError as exc:
        raise InitError("cwd", f'chdir to cwd ("{cwd}") set in config.json failed: '
                        f"{go_error(exc)}") from exc
    try:
        real = st.sc.getcwd()
    except OSError:
        real = "(unreachable)"
    if not real.startswith("/"):
        raise InitError("cwd", f"current working directory is outside of container mount "
                        f"namespace root -- possible container breakout detected")


def _find_executable(sc: Syscalls, path: str) -> OSError | None:
    try:
        st = sc.stat(path)
    except OSError as exc:
        return exc
    if stat.S_ISDIR(st.st_mode):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not sc.access(path, os.X_OK):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    return None


def step_lookup(st: InitState) -> None:
    """Go's exec.LookPath inside the container root, with the container's PATH."""
    if not st.process.args:
        raise InitError("lookup", "args must not be empty")
    name = st.process.args[0]
    if "/" in name:
        err = _find_executable(st.sc, name)
        if err is None:
            st.exe = name
            return
        if isinstance(err, (IsADirectoryError, PermissionError)):
            raise InitError("lookup", f'exec: "{name}": {go_error(err)}')
        raise InitError("lookup", f'exec: "{name}": stat {name}: {go_error(err)}')
    path = DEFAULT_PATH
    for item in st.env or st.process.env:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if _find_executable(st.sc, candidate) is None:
            st.exe = candidate
            return
    raise InitError("lookup", f'exec: "{name}": executable file not found in $PATH')


def step_close_fds(st: InitState) -> None:
    st.sc.umask(0o022)
    st.sc.close_fds_from(3, [st.channel.fileno()])


def step_exec(st: InitState) -> None:
    try:
        st.sc.execve(st.exe, st.process.args, st.env or st.process.env)
    except OSError as exc:
        # Past the lookup, runc reports exec failures as the process's own output.
        msg = f"exec {st.exe}: {go_error(exc)}\n".encode()
        try:
            os.write(2, msg)
        finally:
            os._exit(255)


# ---- container start only ---------------------------------------------------------------

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


def _container_steps(spec: ContainerSpec) -> list[Step]:
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
        st.console = _open_console(st, st.root_fd)
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


def container_steps(spec: ContainerSpec) -> list[Step]:
    """The ordered init steps of a container's main process."""
    return _with_seccomp(_container_steps(spec), spec.process.no_new_privileges)


# ---- exec only --------------------------------------------------------------------------

EXEC_NAMESPACES = ("cgroup", "ipc", "uts", "net", "mnt")


def exec_steps(spec: ExecSpec) -> list[Step]:
    """The ordered init steps of a process exec'd into a running container."""

    def namespaces(st: InitState) -> None:
        fds = []
        root = -1
        try:
            # the container's root as its init sees it, taken before joining: setns(mnt)
            # alone puts us at the namespace's root, which is the host's when the daemon
            # runs in a chroot (or the init moved its rootfs instead of pivoting)
            root = st.sc.open(f"/proc/{st.init_pid}/root", os.O_PATH | os.O_DIRECTORY)
            for kind in EXEC_NAMESPACES:
                fds.append((kind, st.sc.open(f"/proc/{st.init_pid}/ns/{kind}", os.O_RDONLY)))
            for kind, fd in fds:
                st.sc.setns(fd, S.NAMESPACE_FLAGS[kind])
            st.sc.fchdir(root)
            st.sc.chroot(".")
            st.sc.chdir("/")
        finally:
            for _, fd in fds:
                st.sc.close(fd)
            if root >= 0:
                st.sc.close(root)

    def console(st: InitState) -> None:
        if spec.process.tty:
            root = st.sc.open("/", os.O_PATH | os.O_DIRECTORY)
            try:
                st.console = _open_console(st, root)
            finally:
                st.sc.close(root)

    return _with_seccomp([
        ("prepare", step_prepare),
        ("close inherited fds", step_close_inherited),
        ("join cgroups", step_join_cgroups),
        ("oom score", step_oom_score),
        ("namespaces", namespaces),
        ("console", console),
        ("rlimits", step_rlimits),
        ("stdio", step_stdio),
        ("user", step_user),
        ("bounding set", step_bounding_set),
        ("switch user", step_switch_user),
        ("capabilities", step_capabilities),
        ("no_new_privileges", step_no_new_privileges),
        ("cwd", step_cwd),
        ("lookup", step_lookup),
        ("close fds", step_close_fds),
        ("exec", step_exec),
    ], spec.process.no_new_privileges)


__all__ = ["InitError", "InitState", "Stdio", "Step", "run_steps", "container_steps",
           "exec_steps", "go_error"]
