"""Docker's default seccomp profile (Docker Engine 28.x), as data.

The same rules, in the same order, as moby's ``profiles/seccomp/default.json`` of engine 28
(moby/profiles seccomp v0.1.0): everything not allowed fails with EPERM; 361 syscalls are
always allowed; the rest depend on the container's capabilities (its bounding set), the
host's architecture and kernel, or on argument values (``personality``, ``socket``,
``clone``). ``clone3`` fails with ENOSYS without CAP_SYS_ADMIN, so that libcs fall back to
``clone``, whose namespace flags are then refused by the argument rule.

:func:`container_profile` chooses a container's filter from its ``--security-opt`` values
and ``--privileged`` as dockerd's ``WithSeccomp`` does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from runtime.errors import SystemError_
from runtime.spec.model import SeccompArg, SeccompProfile, SeccompRule
from runtime.spec.seccomp import (
    ConditionalRule, DockerProfile, Host, ProfileError, RuleFilter, parse_profile, resolve,
)

ALLOW = "SCMP_ACT_ALLOW"
EPERM = 1
ENOSYS = 38

# Namespace flags refused in clone(2)'s flags argument without CAP_SYS_ADMIN:
# CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
# | CLONE_NEWCGROUP.
CLONE_NAMESPACE_FLAGS = 0x7E020000
AF_VSOCK = 40

# personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
# and 0xffffffff (query the current persona).
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

ARCH_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
    ("SCMP_ARCH_RISCV64", ()),
)

ALWAYS_ALLOWED: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
)


def _allow(*names: str, args: tuple[SeccompArg, ...] = ()) -> SeccompRule:
    return SeccompRule(names, ALLOW, None, args)


def _with_caps(*caps: str) -> RuleFilter:
    return RuleFilter(caps=caps)


def _on(*arches: str) -> RuleFilter:
    return RuleFilter(arches=arches)


_SYS_ADMIN = _with_caps("CAP_SYS_ADMIN")

RULES: tuple[ConditionalRule, ...] = (
    ConditionalRule(_allow(*ALWAYS_ALLOWED)),
    # Before 4.8 ptrace could bypass seccomp: allowed only from 4.8 on (or with SYS_PTRACE).
    ConditionalRule(_allow("process_vm_readv", "process_vm_writev", "ptrace"),
                    includes=RuleFilter(min_kernel=(4, 8))),
    ConditionalRule(_allow("socket", args=(SeccompArg(0, AF_VSOCK, "SCMP_CMP_NE"),))),
    *(ConditionalRule(_allow("personality", args=(SeccompArg(0, p, "SCMP_CMP_EQ"),)))
      for p in PERSONALITIES),
    ConditionalRule(_allow("sync_file_range2", "swapcontext"), includes=_on("ppc64le")),
    ConditionalRule(_allow("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                           "breakpoint", "cacheflush", "set_tls"),
                    includes=_on("arm", "arm64")),
    ConditionalRule(_allow("arch_prctl"), includes=_on("amd64", "x32")),
    ConditionalRule(_allow("modify_ldt"), includes=_on("amd64", "x32", "x86")),
    ConditionalRule(_allow("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
                    includes=_on("s390", "s390x")),
    ConditionalRule(_allow("riscv_flush_icache"), includes=_on("riscv64")),
    ConditionalRule(_allow("open_by_handle_at"), includes=_with_caps("CAP_DAC_READ_SEARCH")),
    ConditionalRule(_allow("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
                           "fsopen", "fspick", "lookup_dcookie", "lsm_get_self_attr",
                           "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr",
                           "move_mount", "open_tree", "perf_event_open", "quotactl",
                           "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
                           "umount", "umount2", "unshare"),
                    includes=_SYS_ADMIN),
    # Without SYS_ADMIN: clone without namespace flags only (flags are arg 1 on s390).
    ConditionalRule(_allow("clone", args=(SeccompArg(0, CLONE_NAMESPACE_FLAGS,
                                                     "SCMP_CMP_MASKED_EQ"),)),
                    excludes=RuleFilter(caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x"))),
    ConditionalRule(_allow("clone", args=(SeccompArg(1, CLONE_NAMESPACE_FLAGS,
                                                     "SCMP_CMP_MASKED_EQ"),)),
                    includes=_on("s390", "s390x"), excludes=_SYS_ADMIN),
    # clone3's flags are behind a pointer, out of seccomp's reach: ENOSYS makes libcs
    # fall back to clone, which the rule above can check.
    ConditionalRule(SeccompRule(("clone3",), "SCMP_ACT_ERRNO", ENOSYS), excludes=_SYS_ADMIN),
    ConditionalRule(_allow("reboot"), includes=_with_caps("CAP_SYS_BOOT")),
    ConditionalRule(_allow("chroot"), includes=_with_caps("CAP_SYS_CHROOT")),
    ConditionalRule(_allow("delete_module", "init_module", "finit_module"),
                    includes=_with_caps("CAP_SYS_MODULE")),
    ConditionalRule(_allow("acct"), includes=_with_caps("CAP_SYS_PACCT")),
    ConditionalRule(_allow("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                           "process_vm_writev", "ptrace"),
                    includes=_with_caps("CAP_SYS_PTRACE")),
    ConditionalRule(_allow("iopl", "ioperm"), includes=_with_caps("CAP_SYS_RAWIO")),
    ConditionalRule(_allow("settimeofday", "stime", "clock_settime", "clock_settime64"),
                    includes=_with_caps("CAP_SYS_TIME")),
    ConditionalRule(_allow("vhangup"), includes=_with_caps("CAP_SYS_TTY_CONFIG")),
    ConditionalRule(_allow("get_mempolicy", "mbind", "set_mempolicy",
                           "set_mempolicy_home_node"),
                    includes=_with_caps("CAP_SYS_NICE")),
    ConditionalRule(_allow("syslog"), includes=_with_caps("CAP_SYSLOG")),
    ConditionalRule(_allow("bpf"), includes=_with_caps("CAP_BPF")),
    ConditionalRule(_allow("perf_event_open"), includes=_with_caps("CAP_PERFMON")),
)

DEFAULT_PROFILE = DockerProfile(
    default_action="SCMP_ACT_ERRNO",
    default_errno_ret=EPERM,
    rules=RULES,
    arch_map=ARCH_MAP,
)

UNCONFINED = "unconfined"
BUILTIN = "builtin"


def seccomp_option(security_opt: Iterable[str] | None) -> str:
    """The last ``seccomp=<value>`` (or deprecated ``seccomp:<value>``) option; "" if none."""
    value = ""
    for opt in security_opt or ():
        sep = "=" if "=" in opt else ":"
        key, found, val = opt.partition(sep)
        if found and key == "seccomp":
            value = val
    return value


def container_profile(security_opt: Iterable[str] | None, privileged: bool,
                      capabilities: Collection[str],
                      where: Host | None = None) -> SeccompProfile | None:
    """The filter of a container (and of its execs); None runs it unconfined.

    The default profile unless ``seccomp=unconfined``; ``seccomp=<profile JSON>`` uses that
    profile. Privileged containers run unconfined unless given a profile JSON (dockerd then
    loads it, so ``seccomp=builtin`` fails to decode there too). Raises ``SystemError_``
    with dockerd's message for a profile it would refuse (a start-time error in dockerd).
    """
    value = seccomp_option(security_opt)
    if value == UNCONFINED:
        return None
    try:
        if privileged:
            return resolve(parse_profile(value), capabilities, where) if value else None
        profile = DEFAULT_PROFILE if value in ("", BUILTIN) else parse_profile(value)
        return resolve(profile, capabilities, where)
    except ProfileError as exc:
        raise SystemError_(str(exc)) from exc


__all__ = ["container_profile", "seccomp_option", "DEFAULT_PROFILE", "ALWAYS_ALLOWED", "RULES", "ARCH_MAP", "CLONE_NAMESPACE_FLAGS",
           "PERSONALITIES"]
