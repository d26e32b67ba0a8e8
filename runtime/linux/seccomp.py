"""Compile seccomp profiles to BPF with libseccomp, once; load them with one prctl.

:func:`compile_profile` turns a :class:`~runtime.spec.model.SeccompProfile` into a classic
BPF program the way runc does (same libseccomp calls, same rule semantics): names resolved
for the native architecture and translated by libseccomp for the others, rules whose
action equals the default skipped, conditions on the same argument OR-ed as separate
rules, unknown names ignored. Two runc behaviours are added in a short prefix program:

- the ``-ENOSYS`` stub: a syscall numbered above every syscall the profile names (for its
  architecture) fails with ENOSYS instead of the default action, so that programs fall
  back from syscalls newer than the profile (unless the default action already allows);
- syscalls newer than the installed libseccomp (2.5.4 knows none of ``mseal``,
  ``statmount``... that engine 28's profile allows) get their number from a small table,
  for the x86 family, so the profile means on this host what it means with a current
  libseccomp.

libseccomp is opened when this module is imported (in the supervisor, before any fork);
the forked init only calls :func:`load`, a single ``prctl(PR_SET_SECCOMP)`` through the
``Syscalls`` seam on a program compiled before the fork. :class:`FilterCache` compiles
each distinct profile once.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

from runtime.linux.syscalls import Syscalls
from runtime.spec.model import SeccompArg, SeccompProfile

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# seccomp return values (linux/seccomp.h), as libseccomp's SCMP_ACT_*.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

_COMPARE = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
            "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ATTR_CTL_NNP = 3
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
_ATTR_CTL_OPTIMIZE = 8
_NR_SCMP_ERROR = -1

# AUDIT_ARCH_* as the kernel reports them in seccomp_data.arch.
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
AUDIT_ARCH_ARM = 0x40000028
X32_SYSCALL_BIT = 0x40000000

# Syscalls newer than libseccomp 2.5.4, numbered as in the kernel's tables. From 424 on
# every architecture shares one numbering; x32 adds X32_SYSCALL_BIT; uretprobe is x86_64's.
_UNIFIED_NEW = {
    "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
    "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
    "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468,
    "file_setattr": 469,
}
_FALLBACK_NUMBERS: dict[str, dict[str, int]] = {
    "SCMP_ARCH_X86_64": {**_UNIFIED_NEW, "uretprobe": 335},
    "SCMP_ARCH_X86": dict(_UNIFIED_NEW),
    "SCMP_ARCH_X32": {n: nr | X32_SYSCALL_BIT for n, nr in _UNIFIED_NEW.items()},
}
_AUDIT_ARCH = {"SCMP_ARCH_X86_64": AUDIT_ARCH_X86_64, "SCMP_ARCH_X32": AUDIT_ARCH_X86_64,
               "SCMP_ARCH_X86": AUDIT_ARCH_I386, "SCMP_ARCH_AARCH64": AUDIT_ARCH_AARCH64,
               "SCMP_ARCH_ARM": AUDIT_ARCH_ARM}

# classic BPF opcodes used by the prefix program
_LD_W_ABS = 0x20
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JSET_K = 0x45
_RET_K = 0x06


class SeccompError(Exception):
    """A profile that cannot be compiled; ``str()`` says why, in runc's words."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _library_names() -> Iterator[str | None]:
    yield "libseccomp.so.2"
    import ctypes.util  # only if the soname fails: it loads shutil, tempfile & co. (1.8 MB)

    yield ctypes.util.find_library("seccomp")


def _open_libseccomp() -> ctypes.CDLL | None:
    for name in _library_names():
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        return lib
    return None


_lib = _open_libseccomp()
AVAILABLE = _lib is not None


def _libseccomp() -> ctypes.CDLL:
    if _lib is None:
        raise SeccompError("seccomp is not supported: libseccomp.so.2 is not installed")
    return _lib


# --- compiled filters ----------------------------------------------------------------------


class CompiledFilter:
    """A BPF program and the ``sock_fprog`` pointing at it, allocated in this process so a
    forked child finds both at the same address and loads them without allocating."""

    __slots__ = ("program", "_buffer", "_fprog")

    def __init__(self, program: bytes) -> None:
        if not program or len(program) % 8 or len(program) // 8 > 0xFFFF:
            raise SeccompError(f"invalid BPF program of {len(program)} bytes")
        self.program = program
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8,
                                 ctypes.cast(self._buffer, ctypes.c_void_p).value)

    @property
    def address(self) -> int:
        """Address of the ``struct sock_fprog``, the third argument of the prctl."""
        return ctypes.addressof(self._fprog)

    def instructions(self) -> list[tuple[int, int, int, int]]:
        """(code, jt, jf, k) of each instruction."""
        return list(struct.iter_unpack("=HBBI", self.program))


def load(sc: Syscalls, compiled: CompiledFilter) -> None:
    """Install ``compiled`` on the calling thread (needs no_new_privs or CAP_SYS_ADMIN)."""
    sc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, compiled.address)


class FilterCache:
    """Compiled filters by profile digest: each distinct profile is compiled once.

    Bounded (least recently used goes first); a running container keeps its own
    reference, so an evicted filter stays valid for that container's execs.
    """

    def __init__(self, compiler: Callable[[SeccompProfile], CompiledFilter] | None = None,
                 limit: int = 64) -> None:
        self._compile = compiler or compile_profile
        self._limit = limit
        # keyed by the (frozen, hashable) profile itself: exact, and no hashlib (whose
        # OpenSSL costs the supervisor ~3.7 MB of RSS)
        self._filters: OrderedDict[SeccompProfile, CompiledFilter] = OrderedDict()
        self.compiled = 0

    def get(self, profile: SeccompProfile) -> CompiledFilter:
        key = profile
        found = self._filters.get(key)
        if found is not None:
            self._filters.move_to_end(key)
            return found
        compiled = self._compile(profile)
        self.compiled += 1
        self._filters[key] = compiled
        while len(self._filters) > self._limit:
            self._filters.popitem(last=False)
        return compiled

    def __len__(self) -> int:
        return len(self._filters)


# --- compilation -----------------------------------------------------------------------------


def action_value(action: str, errno_ret: int | None) -> int:
    """The seccomp return value of an OCI action name (runc's mapping)."""
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return ACT_KILL_THREAD
    if action == "SCMP_ACT_KILL_PROCESS":
        return ACT_KILL_PROCESS
    if action == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if action == "SCMP_ACT_TRACE":
        return ACT_TRACE | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if action == "SCMP_ACT_TRAP":
        return ACT_TRAP
    if action == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if action == "SCMP_ACT_LOG":
        return ACT_LOG
    if action == "SCMP_ACT_NOTIFY":
        raise SeccompError("seccomp notify is not supported")
    raise SeccompError("invalid action, cannot use in rule")


def arch_token(name: str) -> int:
    """libseccomp's token for "SCMP_ARCH_X86_64" and the like."""
    lib = _libseccomp()
    short = name.removeprefix("SCMP_ARCH_").lower()
    token = int(lib.seccomp_arch_resolve_name(short.encode())) if short else 0
    if not token:
        raise SeccompError(f"error validating Seccomp architecture: invalid architecture: {name}")
    return token


def native_arch() -> str:
    """The SCMP_ARCH_* name of this machine."""
    token = int(_libseccomp().seccomp_arch_native())
    for name in _AUDIT_ARCH:
        if name != "SCMP_ARCH_X32" and arch_token(name) == token:
            return name
    raise SeccompError(f"unknown native architecture {token:#x}")


def syscall_number(name: str, arch: str | None = None) -> int | None:
    """The number of ``name`` on ``arch`` (native when None), from libseccomp or the table
    of newer syscalls; None if unknown. Negative numbers are libseccomp pseudo-syscalls."""
    lib = _libseccomp()
    raw = name.encode()
    if arch is None:
        nr = int(lib.seccomp_syscall_resolve_name(raw))
        arch = native_arch()
    else:
        nr = int(lib.seccomp_syscall_resolve_name_arch(arch_token(arch), raw))
    if nr != _NR_SCMP_ERROR:
        return nr
    return _FALLBACK_NUMBERS.get(arch, {}).get(name)


def compile_profile(profile: SeccompProfile) -> CompiledFilter:
    """The BPF program for ``profile``: libseccomp's, behind the prefix described above."""
    lib = _libseccomp()
    default = action_value(profile.default_action, profile.default_errno_ret)
    native = native_arch()
    arches = list(dict.fromkeys(profile.architectures))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError("error creating filter: invalid default action")
    fallbacks: list[tuple[str, int]] = []
    try:
        for arch in arches:
            rc = lib.seccomp_arch_add(ctx, arch_token(arch))
            if rc < 0 and rc != -errno.EEXIST:
                raise SeccompError(f"error adding architecture to seccomp filter: "
                                   f"{os.strerror(-rc)}")
        for flag in profile.flags:
            _set_flag(lib, ctx, flag)
        if sum(len(r.names) for r in profile.syscalls) > 32:
            lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)  # binary tree, as runc
        lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0)
        for rule in profile.syscalls:
            action = action_value(rule.action, rule.errno_ret)
            if action == default:
                continue
            for name in rule.names:
                if not name:
                    raise SeccompError("empty string is not a valid syscall")
                nr = int(lib.seccomp_syscall_resolve_name(name.encode()))
                if nr == _NR_SCMP_ERROR:
                    if not rule.args:
                        fallbacks.append((name, action))
                    continue  # runc: unknown to libseccomp, so ignored
                _add_rule(lib, ctx, name, nr, action, rule.args)
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    prefix = _prefix(profile, default, [native, *(a for a in arches if a != native)], fallbacks)
    return CompiledFilter(_assemble(prefix, len(program) // 8) + program)


def _set_flag(lib: ctypes.CDLL, ctx: int, flag: str) -> None:
    if flag == "SECCOMP_FILTER_FLAG_TSYNC":
        return  # the init process is single-threaded
    # Other flags are arguments of seccomp(2), which the prctl load cannot pass: refuse
    # rather than silently load a different filter.
    raise SeccompError(f"seccomp flag {flag} is not supported")


def _add_rule(lib: ctypes.CDLL, ctx: int, name: str, nr: int, action: int,
              args: Sequence[SeccompArg]) -> None:
    conditions = [_condition(a) for a in args]
    indexes = [a.index for a in args]
    if len(set(indexes)) != len(indexes):
        groups = [[c] for c in conditions]  # same argument twice: OR them, one rule each
    else:
        groups = [conditions]
    for group in groups:
        array = (_ArgCmp * max(1, len(group)))(*group)
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
        if rc < 0:
            raise SeccompError(f"error adding seccomp filter rule for syscall {name}: "
                               f"{os.strerror(-rc)}")


def _condition(arg: SeccompArg) -> _ArgCmp:
    if arg.index > 5:
        raise SeccompError(f"syscall argument index {arg.index} out of range")
    op = _COMPARE.get(arg.op)
    if op is None:
        raise SeccompError("invalid operator, cannot use in rule")
    return _ArgCmp(arg.index, op, arg.value, arg.value_two)


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise SeccompError(f"error exporting BPF: {os.strerror(-rc)}")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# --- the prefix program: newer syscalls and the -ENOSYS stub -----------------------------

_Insn = tuple[int, "int | str", "int | str", "int | str"]  # jt/jf/k may name a label


def _prefix(profile: SeccompProfile, default: int, arches: Sequence[str],
            fallbacks: Sequence[tuple[str, int]]) -> list[_Insn | str]:
    """Instructions (and label names) run before libseccomp's program ("main")."""
    stub = not (default in (ACT_ALLOW, ACT_LOG) or default & 0xFFFF0000 == ACT_TRACE
                or default == ACT_ERRNO | errno.ENOSYS)
    names = {n for r in profile.syscalls for n in r.names}
    sections: dict[int, dict[str, tuple[int | None, list[tuple[int, int]]]]] = {}
    for arch in arches:
        audit = _AUDIT_ARCH.get(arch)
        if audit is None:
            continue  # other families: libseccomp's program alone
        numbers = [nr for n in names if (nr := syscall_number(n, arch)) is not None and nr >= 0]
        table = _FALLBACK_NUMBERS.get(arch, {})
        extra = sorted((table[n], act) for n, act in dict(fallbacks).items() if n in table)
        last = max(numbers, default=None) if stub else None
        if last is None and not extra:
            continue
        sections.setdefault(audit, {})[arch] = (last, extra)
    if not sections:
        return []
    code: list[_Insn | str] = [(_LD_W_ABS, 0, 0, 4)]
    for audit in sections:
        code.append((_JEQ_K, f"arch{audit}", 0, audit))
    code.append((_JA, 0, 0, "main"))
    for audit, modes in sections.items():
        code += [f"arch{audit}", (_LD_W_ABS, 0, 0, 0)]
        if audit == AUDIT_ARCH_X86_64:
            code.append((_JSET_K, "x32", 0, X32_SYSCALL_BIT))
            code += _checks(modes.get("SCMP_ARCH_X86_64"))
            code += ["x32", *_checks(modes.get("SCMP_ARCH_X32"))]
        else:
            code += _checks(next(iter(modes.values())))
    return code


def _checks(mode: tuple[int | None, list[tuple[int, int]]] | None) -> list[_Insn | str]:
    code: list[_Insn | str] = []
    if mode is not None:
        last, extra = mode
        for nr, action in extra:
            code += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, action)]
        if last is not None:
            code += [(_JGT_K, 0, 1, last), (_RET_K, 0, 0, ACT_ERRNO | errno.ENOSYS)]
    code.append((_JA, 0, 0, "main"))
    return code


def _assemble(code: list[_Insn | str], main_length: int) -> bytes:
    positions: dict[str, int] = {}
    count = 0
    for item in code:
        if isinstance(item, str):
            positions[item] = count
        else:
            count += 1
    positions["main"] = count
    out = bytearray()
    pc = 0
    for item in code:
        if isinstance(item, str):
            continue
        op, jt, jf, k = item

        def rel(target: int | str) -> int:
            return positions[target] - pc - 1 if isinstance(target, str) else target

        jt_, jf_, k_ = rel(jt), rel(jf), (rel(k) if op == _JA else k)
        if not (0 <= jt_ <= 255 and 0 <= jf_ <= 255):
            raise SeccompError("seccomp prefix program too long")
        assert isinstance(k_, int)
        out += struct.pack("=HBBI", op, jt_, jf_, k_ & 0xFFFFFFFF)
        pc += 1
    if pc + main_length > 0xFFFF:
        raise SeccompError("seccomp program too long")
    return bytes(out)


__all__ = ["AVAILABLE", "CompiledFilter", "FilterCache", "SeccompError", "compile_profile",
           "load", "action_value", "arch_token", "native_arch", "syscall_number",
           "PR_SET_SECCOMP", "SECCOMP_MODE_FILTER", "AUDIT_ARCH_X86_64", "AUDIT_ARCH_I386",
           "X32_SYSCALL_BIT"]
