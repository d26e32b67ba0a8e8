"""What the container service sees of the process runtime.

``ProcessRuntime`` starts container processes and execs, delivers signals and reports
exits; ``runtime.process.client.SupervisorClient`` implements it by talking to the
long-lived supervisor process (see ``runtime.process.supervisor``). All fds in a
``StartedProcess`` are owned by the caller (the daemon), which must close them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runtime.errors import EngineError, InvalidParameter, SystemError_
from runtime.spec.model import ContainerSpec, ExecSpec

# dockerd's exit codes for a container whose start failed (daemon/start.go).
EXIT_CMD_NOT_FOUND = 127
EXIT_EACCES = 126
EXIT_UNKNOWN = 128

_OCI_PREFIX = (
    "failed to create task for container: failed to create shim task: OCI runtime create "
    "failed: runc create failed: unable to start container process: error during container init: "
)


@dataclass(frozen=True, slots=True)
class StartedProcess:
    """A running container init or exec'd process.

    ``stdin`` is the pipe write end (None unless open_stdin), or the pty master when ``tty``
    (then ``stdout`` is a dup of the same master and ``stderr`` is None).
    """

    pid: int
    stdin: int | None
    stdout: int | None
    stderr: int | None
    tty: bool


@dataclass(frozen=True, slots=True)
class ExitReport:
    container_id: str
    exec_id: str | None          # None for the container's main process
    pid: int
    exit_code: int               # 128+signal when killed by a signal
    finished_at_ns: int          # time.time_ns() at reaping
    oom_killed: bool = False     # the cgroup counted an OOM kill while it ran (cgroup v2)


class StartFailed(EngineError):
    """The process could not be started; never raised itself, see the two categories below.

    ``text`` is the runtime-level reason (e.g. ``exec: "/no/such": stat /no/such: no such
    file or directory``), ``step`` the init step that failed, ``exit_code`` the exit code
    dockerd records for the container (127 not found, 126 permission denied, 128 other).
    ``str(err)`` is dockerd's full message, which the CLI matches to pick its exit status.
    """

    def __init__(self, step: str, text: str, exit_code: int, message: str | None = None) -> None:
        self.step = step
        self.text = text
        self.exit_code = exit_code
        super().__init__(message if message is not None else message_for(text))


class StartInvalidConfig(StartFailed, InvalidParameter):
    """Command not found / not executable / mount type mismatch (dockerd: 400)."""


class StartSystemError(StartFailed, SystemError_):
    """Any other start failure (dockerd: errdefs.Unknown, 500)."""


def message_for(text: str) -> str:
    return f"{_OCI_PREFIX}{text}: unknown"


def start_failed(step: str, text: str) -> StartFailed:
    """Classify an init failure like dockerd's ``setExitCodeFromError``."""
    low = text.lower()
    if step == "user":
        # dockerd resolves the user itself, before the OCI runtime: no prefix (CLI: 125).
        return StartSystemError(step, text, EXIT_UNKNOWN, message=text)
    if "permission denied" in low:
        return StartInvalidConfig(step, text, EXIT_EACCES)
    if "is a directory" in low:
        return StartInvalidConfig(step, text + ": permission denied", EXIT_EACCES)
    if "not a directory" in low:
        return StartInvalidConfig(
            step,
            text + ": Are you trying to mount a directory onto a file (or vice-versa)? "
            "Check if the specified host path exists and is the expected type",
            EXIT_CMD_NOT_FOUND,
        )
    if "executable file not found" in low or "no such file or directory" in low:
        return StartInvalidConfig(step, text, EXIT_CMD_NOT_FOUND)
    return StartSystemError(step, text, EXIT_UNKNOWN)


class ProcessRuntime(Protocol):
    """Starts and supervises container processes (implemented by ``SupervisorClient``)."""

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        """Start the container's init; returns once it has exec'd. Raises StartFailed."""
        ...

    async def resume(self, container_id: str) -> None:
        """Continue a start made with ``pause_before_exec`` (after ``Created``)."""
        ...

    async def exec(self, spec: ExecSpec) -> StartedProcess:
        """Start a process in a running container's namespaces. Raises StartFailed."""
        ...

    async def signal(self, pid: int, signal: int) -> None:
        """Send ``signal`` to a process the supervisor started (no-op if already reaped)."""
        ...

    def on_exit(self, callback: Callable[[ExitReport], None]) -> None:
        """Register ``callback``; it is called in the event loop for every exit."""
        ...

    async def running(self) -> list[tuple[str, str | None, StartedProcess]]:
        """(container_id, exec_id, process) of every live process, with fresh fds."""
        ...

    async def close(self) -> None:
        """Disconnect; the supervisor and its containers keep running."""
        ...


__all__ = ["StartedProcess", "ExitReport", "StartFailed", "StartInvalidConfig",
           "StartSystemError", "start_failed", "message_for", "ProcessRuntime",
           "EXIT_CMD_NOT_FOUND", "EXIT_EACCES", "EXIT_UNKNOWN"]
