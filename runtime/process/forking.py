"""The supervisor's side of a fork: the child's stdio, the pid namespace it is born in,
and what the forked child does before it runs the init steps.

The child runs between fork and exec in a copy of the supervisor: it must not import
anything (:class:`NoImports`), must not trigger a garbage collection (it would copy every
page of the parent) and starts with default signal handling and an empty signal mask.

Loaded by the supervisor only (no daemon modules): it must stay small.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from runtime.linux import syscalls as S
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process.init import Stdio
from runtime.spec.model import ProcessSpec


class NoImports:
    """Installed in every forked child: a lazy import there could load code from the
    container's filesystem as host root (CVE-2019-14271), so any import not already
    done by the supervisor fails instead. (A meta path finder by shape: importlib.abc
    would load importlib.resources & co. into the supervisor for nothing.)"""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        raise ImportError(f"import of {fullname!r} after fork is not allowed")


def exit_code(status: int) -> int:
    """A wait status as Docker reports it: the exit code, or 128+signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


@dataclass(frozen=True, slots=True)
class StdioPlan:
    """The pipes of one process: ``child`` is its stdio, ``child_close`` the fds the
    parent closes after the fork, ``ours`` the daemon-side ends by name."""

    child: Stdio
    child_close: list[int]
    ours: dict[str, int]


def plan_stdio(process: ProcessSpec, devnull: int) -> StdioPlan:
    """Pipes for a process without a tty (a tty's pty is made by the child itself)."""
    if process.tty:
        return StdioPlan(Stdio(None, None, None), [], {})
    child_close: list[int] = []
    ours: dict[str, int] = {}
    stdin = devnull
    if process.open_stdin:
        r, w = os.pipe2(os.O_CLOEXEC)
        stdin, ours["stdin"] = r, w
        child_close.append(r)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ours["stdout"], ours["stderr"] = out_r, err_r
    child_close += [out_w, err_w]
    return StdioPlan(Stdio(stdin, out_w, err_w), child_close, ours)


class Forker:
    """Forks children into a pid namespace, coming back to the supervisor's own
    (``own_pidns``, an fd) afterwards."""

    def __init__(self, sc: LinuxSyscalls, own_pidns: int) -> None:
        self.sc = sc
        self.own_pidns = own_pidns

    def fork(self, pid_ns: str | None, new_pid_ns: bool, child: Callable[[], None]) -> int:
        """Fork with the child in a new pid namespace, ``pid_ns`` (a path), or ours."""
        switched = False
        if new_pid_ns:
            self.sc.unshare(S.CLONE_NEWPID)
            switched = True
        elif pid_ns:
            fd = os.open(pid_ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                self.sc.setns(fd, S.CLONE_NEWPID)
                switched = True
            finally:
                os.close(fd)
        try:
            pid = os.fork()
        except BaseException:
            if switched:
                self.sc.setns(self.own_pidns, S.CLONE_NEWPID)
            raise
        if pid == 0:
            run_child(child)
        if switched:
            self.sc.setns(self.own_pidns, S.CLONE_NEWPID)
        return pid


def run_child(body: Callable[[], None]) -> None:
    """The forked child: restore default signal handling, run the steps, never return."""
    try:
        gc.disable()  # a collection would touch (and copy) every page of the parent
        sys.meta_path.insert(0, NoImports())
        signal.set_wakeup_fd(-1)
        for sig in signal.valid_signals():
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        body()
    finally:
        os._exit(255)


__all__ = ["NoImports", "exit_code", "StdioPlan", "plan_stdio", "Forker", "run_child"]
