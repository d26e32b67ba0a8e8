"""The one seam between the runtime and the kernel.

Everything the init steps do to the kernel goes through a :class:`Syscalls` object:
``LinuxSyscalls`` calls ``os.*`` where Python 3.11 has the call and checked ctypes where it
does not (unshare, setns, mount, umount2, pivot_root, prctl, capget/capset, sethostname,
setdomainname, openat2); ``runtime.linux.syscalls_fake.RecordingSyscalls`` records every
call for unit tests that need no root (a module of its own, so the supervisor does not load
it). Failures always raise ``OSError`` with the errno; nothing is swallowed here.

All of ``ctypes`` is touched at import time, so a forked child never has to load a
library (or anything else) after it has entered a container's root.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
import socket
import struct
from collections.abc import Sequence
from typing import Protocol

# sched.h
CLONE_FS = 0x00000200  # unshare(CLONE_FS): a thread's own cwd (runtime.linux.mounts)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS: dict[str, int] = {
    "mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID, "cgroup": CLONE_NEWCGROUP,
}

# sys/mount.h
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
# statvfs f_flag bits that equal their MS_* counterparts; kept across a bind remount.
_KEPT_MNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME

# sys/prctl.h
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# openat2 resolve flags (linux/openat2.h)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# ioctls
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_SYS_PIVOT_ROOT = 155
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_SYS_SETNS = 308
_SYS_OPENAT2 = 437
_SYS_BPF = 321
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

RLIMITS: dict[str, int] = {
    name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")
}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(result: int, what: str, path: str | None = None) -> int:
    if result < 0:
        err = ctypes.get_errno()
        if path is None:
            raise OSError(err, f"{what}: {os.strerror(err)}")
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


class Syscalls(Protocol):
    """Kernel operations used by the init steps and the supervisor.

    Each method raises ``OSError`` (with ``errno``) on failure. Paths are as the calling
    process sees them; ``*_at`` variants take a directory fd.
    """

    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None: ...
    def umount2(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def capget(self) -> tuple[int, int, int]: ...
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...
    def setgroups(self, gids: Sequence[int]) -> None: ...
    def setresgid(self, gid: int) -> None: ...
    def setresuid(self, uid: int) -> None: ...
    def setsid(self) -> None: ...
    def setrlimit(self, name: str, soft: int, hard: int) -> None: ...
    def umask(self, mask: int) -> None: ...
    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int: ...
    def open(self, path: str, flags: int, mode: int = 0o644) -> int: ...
    def close(self, fd: int) -> None: ...
    def mkdirat(self, dirfd: int, name: str, mode: int) -> None: ...
    def mknodat(self, dirfd: int, name: str, mode: int, device: int) -> None: ...
    def symlinkat(self, target: str, dirfd: int, name: str) -> None: ...
    def fchownat(self, dirfd: int, name: str, uid: int, gid: int) -> None: ...
    def fstat(self, fd: int) -> os.stat_result: ...
    def stat(self, path: str) -> os.stat_result: ...
    def access(self, path: str, mode: int) -> bool: ...
    def mount_flags(self, path: str) -> int: ...
    def getcwd(self) -> str: ...
    def read_file(self, path: str, limit: int) -> bytes: ...
    def write_file(self, path: str, data: bytes) -> None: ...
    def chdir(self, path: str) -> None: ...
    def fchdir(self, fd: int) -> None: ...
    def chroot(self, path: str) -> None: ...
    def dup2(self, fd: int, fd2: int) -> None: ...
    def ioctl(self, fd: int, request: int, arg: bytes | int) -> bytes | int: ...
    def link_up(self, ifname: str) -> None: ...
    def close_fds_from(self, first: int, keep: Sequence[int]) -> None: ...
    def execve(self, path: str, args: Sequence[str], env: Sequence[str]) -> None: ...
    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int: ...
    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None: ...


class LinuxSyscalls:
    """The real kernel, through ``os`` and checked ctypes calls."""

    def unshare(self, flags: int) -> None:
        _check(_libc.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        _check(_libc.syscall(_SYS_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)

    def umount2(self, target: str, flags: int) -> None:
        _check(_libc.umount2(_b(target), flags), "umount2", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root", new_root)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int:
        return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for i in range(2):
            shift = 32 * i
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), data), "capset")

    def capget(self) -> tuple[int, int, int]:
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        _check(_libc.syscall(_SYS_CAPGET, ctypes.byref(header), data), "capget")
        return (data[0].effective | data[1].effective << 32,
                data[0].permitted | data[1].permitted << 32,
                data[0].inheritable | data[1].inheritable << 32)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc.sethostname(raw, len(raw)), "sethostname")

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc.setdomainname(raw, len(raw)), "setdomainname")

    def setgroups(self, gids: Sequence[int]) -> None:
        os.setgroups(list(gids))

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def setsid(self) -> None:
        os.setsid()

    def setrlimit(self, name: str, soft: int, hard: int) -> None:
        if name not in RLIMITS:
            raise OSError(errno.EINVAL, f"unknown rlimit {name}")
        resource.setrlimit(RLIMITS[name], (soft, hard))

    def umask(self, mask: int) -> None:
        os.umask(mask)

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, resolve)
        fd = _libc.syscall(_SYS_OPENAT2, ctypes.c_int(dirfd), _b(path), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        return _check(fd, "openat2", path)

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | os.O_CLOEXEC, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def mkdirat(self, dirfd: int, name: str, mode: int) -> None:
        os.mkdir(name, mode, dir_fd=dirfd)

    def mknodat(self, dirfd: int, name: str, mode: int, device: int) -> None:
        os.mknod(name, mode, device, dir_fd=dirfd)

    def symlinkat(self, target: str, dirfd: int, name: str) -> None:
        os.symlink(target, name, dir_fd=dirfd)

    def fchownat(self, dirfd: int, name: str, uid: int, gid: int) -> None:
        os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def access(self, path: str, mode: int) -> bool:
        return os.access(path, mode, effective_ids=True)

    def mount_flags(self, path: str) -> int:
        return os.statvfs(path).f_flag & _KEPT_MNT_FLAGS

    def getcwd(self) -> str:
        return os.getcwd()

    def read_file(self, path: str, limit: int) -> bytes:
        # O_NONBLOCK: a hostile rootfs may put a FIFO where a config file belongs.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            st = os.fstat(fd)
            if (st.st_mode & 0o170000) != 0o100000:
                raise OSError(errno.EINVAL, "not a regular file", path)
            chunks: list[bytes] = []
            size = 0
            while size < limit:
                chunk = os.read(fd, min(65536, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write_file(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def dup2(self, fd: int, fd2: int) -> None:
        os.dup2(fd, fd2, inheritable=True)

    def ioctl(self, fd: int, request: int, arg: bytes | int) -> bytes | int:
        result: bytes | int = fcntl.ioctl(fd, request, arg)
        return result

    def link_up(self, ifname: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 0) as s:
            ifr = struct.pack("16sH14x", ifname.encode(), 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(),
                                                              flags | IFF_UP))

    def close_fds_from(self, first: int, keep: Sequence[int]) -> None:
        start = first
        for fd in sorted(k for k in keep if k >= first):
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, 1 << 20)

    def execve(self, path: str, args: Sequence[str], env: Sequence[str]) -> None:
        environ = {}
        for item in env:
            key, sep, value = item.partition("=")
            environ[key] = value if sep else ""
        os.execve(path, list(args), environ)

    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int:
        """A new fd of the verified program (``insns``: raw ``struct bpf_insn`` array);
        the verifier's log is in the OSError message when it refuses."""
        code = ctypes.create_string_buffer(insns, len(insns))
        lic = ctypes.create_string_buffer(license.encode())
        log = ctypes.create_string_buffer(65536)
        attr = ctypes.create_string_buffer(128)  # union bpf_attr, zero tail
        struct.pack_into("=IIQQIIQ", attr, 0, prog_type, len(insns) // 8,
                         ctypes.addressof(code), ctypes.addressof(lic), 1, len(log),
                         ctypes.addressof(log))
        fd = _libc.syscall(_SYS_BPF, ctypes.c_int(_BPF_PROG_LOAD), attr, ctypes.c_uint(128))
        if fd < 0:
            err = ctypes.get_errno()
            detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
            raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}: {' / '.join(detail)}")
        return int(fd)

    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
        _check(_libc.syscall(_SYS_BPF, ctypes.c_int(_BPF_PROG_ATTACH), attr, ctypes.c_uint(128)),
               "bpf(BPF_PROG_ATTACH)")


__all__ = ["Syscalls", "LinuxSyscalls", "NAMESPACE_FLAGS", "RLIMITS"]
