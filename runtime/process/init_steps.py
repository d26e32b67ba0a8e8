"""The init steps shared by a container's start and an exec: session, fds, cgroups,
stdio and console, user, capabilities, seccomp, cwd, executable lookup and execve.

See :mod:`runtime.process.init`. They run between fork and exec; every kernel operation
goes through the ``Syscalls`` seam.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from runtime.linux import mounts as M
from runtime.linux import seccomp as seccomp_filter
from runtime.linux import syscalls as S
from runtime.linux.syscalls import Syscalls
from runtime.linux.users import parse_group, parse_passwd, resolve_user
from runtime.process.init_state import InitError, InitState, Step, go_error
from runtime.process.sync import PtyMaster
from runtime.spec.defaults import CAPABILITY_NUMBERS, DEFAULT_PATH

MAX_ID_FILE = 4 << 20


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


def open_console(st: InitState, root_fd: int) -> int:
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


def with_seccomp(steps: list[Step], no_new_privileges: bool) -> list[Step]:
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
        raise InitError("cwd", "current working directory is outside of container mount "
                        "namespace root -- possible container breakout detected")


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


__all__ = [
    "MAX_ID_FILE", "step_prepare", "step_close_inherited", "step_join_cgroups", "step_oom_score",
    "step_rlimits", "open_console", "step_stdio", "step_user", "step_bounding_set", "step_switch_user",
    "step_capabilities", "step_no_new_privileges", "step_seccomp", "with_seccomp", "step_cwd",
    "step_lookup", "step_close_fds", "step_exec",
]
