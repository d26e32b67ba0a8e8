"""A fake kernel for unit tests that need no root: :class:`RecordingSyscalls` satisfies
:class:`runtime.linux.syscalls.Syscalls`, records every call and returns scripted results.

Kept out of :mod:`runtime.linux.syscalls` so that the supervisor and the daemon do not
load it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.linux.syscalls import MS_NODEV, MS_NOEXEC, MS_NOSUID, TIOCGPTPEER


@dataclass
class RecordingSyscalls:
    """A fake kernel: records ``(name, args)`` of each call and returns scripted results.

    ``files`` maps paths to contents for ``read_file``/``stat``/``access`` (present files
    are executable); ``dirs`` are directories for ``stat``; ``stats`` overrides ``stat`` and
    ``fstat`` by path (``fstat`` uses the path the fd was opened with); ``fail_paths`` make
    ``openat2`` fail with ENOENT; ``fail`` maps a call name to errnos it raises, one per
    call, first call first.
    """

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    fail_paths: set[str] = field(default_factory=set)
    fail: dict[str, list[int]] = field(default_factory=dict)
    caps: tuple[int, int, int] = (0x1FFFFFFFFFF, 0x1FFFFFFFFFF, 0)
    stats: dict[str, os.stat_result] = field(default_factory=dict)
    fd_paths: dict[int, str] = field(default_factory=dict)
    next_fd: int = 100
    cwd: str = "/"

    @staticmethod
    def char_device(major: int, minor: int) -> os.stat_result:
        # index 18 of the full stat_result sequence is st_rdev
        return os.stat_result((0o20666, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                               os.makedev(major, minor)))

    @staticmethod
    def regular_file() -> os.stat_result:
        return os.stat_result((0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0))

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        pending = self.fail.get(name)
        if pending:
            err = pending.pop(0)
            raise OSError(err, f"{name}: {os.strerror(err)}")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    def _fd(self, path: str = "") -> int:
        self.next_fd += 1
        self.fd_paths[self.next_fd] = path
        return self.next_fd

    def unshare(self, flags: int) -> None:
        self._rec("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._rec("setns", fd, nstype)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None) -> None:
        self._rec("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._rec("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._rec("pivot_root", new_root, put_old)

    def chroot(self, path: str) -> None:
        self._rec("chroot", path)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int:
        self._rec("prctl", option, arg2, arg3, arg4, arg5)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._rec("capset", effective, permitted, inheritable)
        self.caps = (effective, permitted, inheritable)

    def capget(self) -> tuple[int, int, int]:
        self._rec("capget")
        return self.caps

    def sethostname(self, name: str) -> None:
        self._rec("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._rec("setdomainname", name)

    def setgroups(self, gids: Sequence[int]) -> None:
        self._rec("setgroups", tuple(gids))

    def setresgid(self, gid: int) -> None:
        self._rec("setresgid", gid)

    def setresuid(self, uid: int) -> None:
        self._rec("setresuid", uid)

    def setsid(self) -> None:
        self._rec("setsid")

    def setrlimit(self, name: str, soft: int, hard: int) -> None:
        self._rec("setrlimit", name, soft, hard)

    def umask(self, mask: int) -> None:
        self._rec("umask", mask)

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        self._rec("openat2", dirfd, path, flags, mode, resolve)
        if path in self.fail_paths:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self._fd(path)

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self._rec("open", path, flags)
        return self._fd(path)

    def close(self, fd: int) -> None:
        self._rec("close", fd)

    def mkdirat(self, dirfd: int, name: str, mode: int) -> None:
        self._rec("mkdirat", dirfd, name, mode)

    def mknodat(self, dirfd: int, name: str, mode: int, device: int) -> None:
        self._rec("mknodat", dirfd, name, mode, device)

    def symlinkat(self, target: str, dirfd: int, name: str) -> None:
        self._rec("symlinkat", target, dirfd, name)

    def fchownat(self, dirfd: int, name: str, uid: int, gid: int) -> None:
        self._rec("fchownat", dirfd, name, uid, gid)

    def fstat(self, fd: int) -> os.stat_result:
        self._rec("fstat", fd)
        path = self.fd_paths.get(fd, "")
        if path in self.stats:
            return self.stats[path]
        return os.stat_result((0o40755, 0, 0, 1, 0, 0, 0, 0, 0, 0))

    def stat(self, path: str) -> os.stat_result:
        self._rec("stat", path)
        if path in self.stats:
            return self.stats[path]
        if path in self.files:
            return os.stat_result((0o100755, 0, 0, 1, 0, 0, len(self.files[path]), 0, 0, 0))
        if path in self.dirs:
            return os.stat_result((0o40755, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def access(self, path: str, mode: int) -> bool:
        self._rec("access", path, mode)
        return path in self.files

    def mount_flags(self, path: str) -> int:
        self._rec("mount_flags", path)
        return MS_NOSUID | MS_NODEV | MS_NOEXEC

    def getcwd(self) -> str:
        self._rec("getcwd")
        return self.cwd

    def read_file(self, path: str, limit: int) -> bytes:
        self._rec("read_file", path)
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self.files[path][:limit]

    def write_file(self, path: str, data: bytes) -> None:
        self._rec("write_file", path, data)

    def chdir(self, path: str) -> None:
        self._rec("chdir", path)
        self.cwd = path

    def fchdir(self, fd: int) -> None:
        self._rec("fchdir", fd)

    def dup2(self, fd: int, fd2: int) -> None:
        self._rec("dup2", fd, fd2)

    def ioctl(self, fd: int, request: int, arg: bytes | int) -> bytes | int:
        self._rec("ioctl", fd, request, arg)
        if request == TIOCGPTPEER:
            return self._fd("pty slave")
        return arg if isinstance(arg, bytes) else 0

    def link_up(self, ifname: str) -> None:
        self._rec("link_up", ifname)

    def close_fds_from(self, first: int, keep: Sequence[int]) -> None:
        self._rec("close_fds_from", first, tuple(keep))

    def execve(self, path: str, args: Sequence[str], env: Sequence[str]) -> None:
        self._rec("execve", path, tuple(args), tuple(env))

    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int:
        if len(insns) % 8 or not insns:
            raise OSError(errno.EINVAL, "bpf(BPF_PROG_LOAD): not a bpf_insn array")
        self._rec("bpf_prog_load", prog_type, insns, license)
        return self._fd("bpf-prog")

    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None:
        if self.fd_paths.get(prog_fd) != "bpf-prog":
            raise OSError(errno.EBADF, "bpf(BPF_PROG_ATTACH): not a program fd")
        self._rec("bpf_prog_attach", self.fd_paths.get(target_fd, ""), prog_fd, attach_type,
                  flags)


__all__ = ["RecordingSyscalls"]
