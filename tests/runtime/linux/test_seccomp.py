"""Compiling profiles with libseccomp: the program's verdicts (run by a BPF interpreter on
seccomp_data), the prefix for new syscalls and -ENOSYS, the cache, and a real load."""

from __future__ import annotations

import errno
import os

import pytest

from runtime.linux import seccomp as L
from runtime.linux.syscalls import LinuxSyscalls
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.spec.defaults import DEFAULT_CAPABILITIES
from runtime.spec.model import SeccompArg, SeccompProfile, SeccompRule
from runtime.spec.seccomp import Host, resolve
from runtime.spec.seccomp_default import DEFAULT_PROFILE
from tests.runtime.linux.bpf import AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, run, seccomp_data

pytestmark = pytest.mark.skipif(not L.AVAILABLE or os.uname().machine != "x86_64",
                                reason="needs libseccomp on x86_64")

AMD64 = Host("amd64", (6, 1))
ALLOW = L.ACT_ALLOW
EPERM = L.ACT_ERRNO | errno.EPERM
ENOSYS = L.ACT_ERRNO | errno.ENOSYS


def _resolved(caps: tuple[str, ...] = DEFAULT_CAPABILITIES) -> SeccompProfile:
    profile = resolve(DEFAULT_PROFILE, caps, AMD64)
    assert profile is not None
    return profile


@pytest.fixture(scope="module")
def default() -> L.CompiledFilter:
    return L.compile_profile(_resolved())


@pytest.fixture(scope="module")
def admin() -> L.CompiledFilter:
    return L.compile_profile(_resolved(DEFAULT_CAPABILITIES + ("CAP_SYS_ADMIN",)))


def verdict(f: L.CompiledFilter, name: str | int, *args: int,
            arch: str = "SCMP_ARCH_X86_64") -> int:
    nr = name if isinstance(name, int) else L.syscall_number(name, arch)
    assert nr is not None and nr >= 0, name
    audit = AUDIT_ARCH_I386 if arch == "SCMP_ARCH_X86" else AUDIT_ARCH_X86_64
    return run(f.program, seccomp_data(nr, audit, args))


@pytest.mark.parametrize("name", ["read", "write", "openat", "execve", "exit_group", "mmap",
                                  "rt_sigaction", "seccomp", "chroot", "ptrace", "arch_prctl",
                                  "statx", "close_range"])
def test_default_allows(default: L.CompiledFilter, name: str) -> None:
    assert verdict(default, name) == ALLOW


@pytest.mark.parametrize("name", ["unshare", "mount", "umount2", "setns", "keyctl", "add_key",
                                  "request_key", "bpf", "reboot", "init_module", "kexec_load",
                                  "pivot_root", "swapon", "settimeofday", "userfaultfd",
                                  "io_uring_setup", "open_by_handle_at", "perf_event_open"])
def test_default_refuses_with_eperm(default: L.CompiledFilter, name: str) -> None:
    assert verdict(default, name) == EPERM


def test_clone3_is_enosys_and_clone_namespaces_eperm(default: L.CompiledFilter,
                                                      admin: L.CompiledFilter) -> None:
    assert verdict(default, "clone3") == ENOSYS
    assert verdict(default, "clone", 0x01200011) == ALLOW            # fork()'s flags
    assert verdict(default, "clone", 0x003D0F00) == ALLOW            # pthread_create's
    for flag in (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
                 0x02000000):
        assert verdict(default, "clone", 0x11 | flag) == EPERM, hex(flag)
    assert verdict(admin, "clone3") == ALLOW
    assert verdict(admin, "clone", 0x10000000) == ALLOW
    assert verdict(admin, "unshare") == verdict(admin, "mount") == ALLOW


def test_argument_rules(default: L.CompiledFilter) -> None:
    for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert verdict(default, "personality", persona) == ALLOW
    assert verdict(default, "personality", 0x0040000) == EPERM        # ADDR_NO_RANDOMIZE
    assert verdict(default, "socket", 2, 1, 0) == ALLOW               # AF_INET
    assert verdict(default, "socket", 40, 1, 0) == EPERM              # AF_VSOCK


def test_32_bit_processes(default: L.CompiledFilter) -> None:
    assert verdict(default, "read", arch="SCMP_ARCH_X86") == ALLOW
    assert verdict(default, "socketcall", arch="SCMP_ARCH_X86") == ALLOW
    assert verdict(default, "chown32", arch="SCMP_ARCH_X86") == ALLOW
    assert verdict(default, "unshare", arch="SCMP_ARCH_X86") == EPERM
    assert verdict(default, "clone3", arch="SCMP_ARCH_X86") == ENOSYS


def test_syscalls_newer_than_libseccomp(default: L.CompiledFilter) -> None:
    # engine 28 allows them; libseccomp 2.5.4 cannot name them: the prefix does.
    for name, nr in (("mseal", 462), ("statmount", 457), ("listmount", 458)):
        assert L.syscall_number(name) == nr
        assert verdict(default, nr) == ALLOW
        assert verdict(default, nr, arch="SCMP_ARCH_X86") == ALLOW
    assert verdict(default, "lsm_get_self_attr") == EPERM            # SYS_ADMIN only


def test_enosys_above_the_newest_syscall_named(default: L.CompiledFilter) -> None:
    # runc's stub: numbers beyond every syscall the profile names are "not implemented",
    # so programs fall back; unknown numbers below stay EPERM.
    assert verdict(default, 467) == ENOSYS and verdict(default, 1000) == ENOSYS
    assert verdict(default, 500, arch="SCMP_ARCH_X86") == ENOSYS
    assert verdict(default, 0x40000000 | 600) == ENOSYS                 # x32
    assert verdict(default, "keyctl") == EPERM


def test_no_stub_when_the_default_allows() -> None:
    deny = SeccompProfile("SCMP_ACT_ALLOW", (SeccompRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO"),))
    f = L.compile_profile(deny)
    assert verdict(f, "mkdir") == EPERM and verdict(f, "mkdirat") == EPERM
    assert verdict(f, 1000) == ALLOW and verdict(f, "read") == ALLOW


def test_custom_actions_and_duplicate_argument_indexes() -> None:
    profile = SeccompProfile("SCMP_ACT_ERRNO", (
        SeccompRule(("read", "write", "exit_group"), "SCMP_ACT_ALLOW"),
        SeccompRule(("mkdir",), "SCMP_ACT_ERRNO", 28),
        SeccompRule(("kill",), "SCMP_ACT_KILL_PROCESS"),
        SeccompRule(("getpid",), "SCMP_ACT_TRAP"),
        # the same argument twice: OR-ed (one rule per condition), as runc does
        SeccompRule(("personality",), "SCMP_ACT_ALLOW",
                    args=(SeccompArg(0, 1, "SCMP_CMP_EQ"), SeccompArg(0, 2, "SCMP_CMP_EQ"))),
        # different arguments: AND-ed
        SeccompRule(("socket",), "SCMP_ACT_ALLOW",
                    args=(SeccompArg(0, 1, "SCMP_CMP_EQ"), SeccompArg(1, 5, "SCMP_CMP_GE"))),
        SeccompRule(("no_such_syscall",), "SCMP_ACT_ALLOW"),   # ignored, as runc does
    ), default_errno_ret=13)
    f = L.compile_profile(profile)
    assert verdict(f, "read") == ALLOW
    assert verdict(f, "close") == L.ACT_ERRNO | 13
    assert verdict(f, "openat") == ENOSYS   # 257: above exit_group (231), the newest named
    assert verdict(f, "mkdir") == L.ACT_ERRNO | 28
    assert verdict(f, "kill") == L.ACT_KILL_PROCESS
    assert verdict(f, "getpid") == L.ACT_TRAP
    assert verdict(f, "personality", 1) == verdict(f, "personality", 2) == ALLOW
    assert verdict(f, "personality", 3) == L.ACT_ERRNO | 13
    assert verdict(f, "socket", 1, 5) == ALLOW
    assert verdict(f, "socket", 1, 4) == verdict(f, "socket", 2, 9) == L.ACT_ERRNO | 13


@pytest.mark.parametrize("profile,message", [
    (SeccompProfile("SCMP_ACT_BOGUS"), "invalid action"),
    (SeccompProfile("SCMP_ACT_ERRNO", architectures=("SCMP_ARCH_NOPE",)), "invalid architecture"),
    (SeccompProfile("SCMP_ACT_ERRNO", (SeccompRule(("read",), "SCMP_ACT_NOTIFY"),)), "notify"),
    (SeccompProfile("SCMP_ACT_ERRNO", (SeccompRule(("read",), "SCMP_ACT_ALLOW", args=(
        SeccompArg(0, 1, "SCMP_CMP_WHAT"),)),)), "invalid operator"),
    (SeccompProfile("SCMP_ACT_ERRNO", flags=("SECCOMP_FILTER_FLAG_LOG",)), "not supported"),
])
def test_uncompilable_profiles(profile: SeccompProfile, message: str) -> None:
    with pytest.raises(L.SeccompError, match=message):
        L.compile_profile(profile)


def test_cache_compiles_each_distinct_profile_once() -> None:
    calls: list[str] = []

    def compiler(profile: SeccompProfile) -> L.CompiledFilter:
        calls.append(profile.digest())
        return L.CompiledFilter(b"\x06\x00\x00\x00\x00\x00\xff\x7f")  # ret ALLOW

    cache = L.FilterCache(compiler, limit=2)
    a, b, c = (SeccompProfile("SCMP_ACT_ERRNO", default_errno_ret=n) for n in (1, 2, 3))
    first = cache.get(a)
    assert cache.get(SeccompProfile("SCMP_ACT_ERRNO", default_errno_ret=1)) is first
    cache.get(b)
    assert len(calls) == 2 and cache.compiled == 2
    cache.get(a)           # a is now the most recent: c evicts b
    cache.get(c)
    assert len(cache) == 2
    cache.get(a)
    assert len(calls) == 3
    cache.get(b)
    assert len(calls) == 4


def test_load_goes_through_the_syscalls_seam(default: L.CompiledFilter) -> None:
    sc = RecordingSyscalls()
    L.load(sc, default)
    assert sc.of("prctl") == [(L.PR_SET_SECCOMP, L.SECCOMP_MODE_FILTER, default.address, 0, 0)]
    assert len(default.program) // 8 == len(default.instructions()) > 100


def test_real_load_in_a_child() -> None:
    deny = L.compile_profile(SeccompProfile(
        "SCMP_ACT_ALLOW", (SeccompRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", 28),)))
    target = f"/tmp/seccomp-test-{os.getpid()}"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            L.load(LinuxSyscalls(), deny)
            try:
                os.mkdir(target)
            except OSError as exc:
                code = 0 if exc.errno == errno.ENOSPC else 2
            with open("/proc/self/status", encoding="ascii") as f:
                if "Seccomp:\t2" not in f.read():
                    code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not os.path.exists(target)
