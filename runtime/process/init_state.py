"""What the init steps share: their state, their error, and how an errno is worded.

See :mod:`runtime.process.init`. Imported by the supervisor before it forks; nothing here
may import lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.linux import seccomp as seccomp_filter
from runtime.linux.syscalls import Syscalls
from runtime.linux.users import ExecUser
from runtime.process.sync import Channel
from runtime.spec.model import ProcessSpec


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




__all__ = ["InitError", "Stdio", "InitState", "Step", "go_error"]
