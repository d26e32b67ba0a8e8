"""A container's run state (dockerd's ``container.State``) and its waiters.

The state is plain data plus the transitions the service drives; every transition that
ends a run resolves the matching waiters (``asyncio.Future``), so ``POST /wait`` can look
the container up first, answer with headers at once, and await the future afterwards.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import Conflict, InvalidParameter


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


class WaitCondition(enum.StrEnum):
    NOT_RUNNING = "not-running"
    NEXT_EXIT = "next-exit"
    REMOVED = "removed"

    @classmethod
    def parse(cls, value: str) -> WaitCondition:
        if value == "":
            return cls.NOT_RUNNING
        try:
            return cls(value)
        except ValueError:
            raise InvalidParameter(f"invalid condition: {value!r}") from None


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """What a waiter receives: the exit code and the error recorded with it, if any."""

    exit_code: int
    error: str = ""


@dataclass(slots=True)
class State:
    """Mutable run state of one container; persisted with the container record."""

    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    removal_in_progress: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at_ns: int = 0
    finished_at_ns: int = 0
    # runtime.containers.health.Health while a healthcheck is configured (not persisted)
    health: Any = field(default=None, compare=False)
    _waiters: dict[WaitCondition, list[asyncio.Future[ExitStatus]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def status(self) -> Status:
        if self.running:
            if self.paused:
                return Status.PAUSED
            if self.restarting:
                return Status.RESTARTING
            return Status.RUNNING
        if self.removal_in_progress:
            return Status.REMOVING
        if self.dead:
            return Status.DEAD
        if self.started_at_ns == 0:
            return Status.CREATED
        return Status.EXITED

    def exit_status(self) -> ExitStatus:
        return ExitStatus(self.exit_code, self.error)

    # transitions -------------------------------------------------------------------

    def set_running(self, pid: int, started_at_ns: int) -> None:
        self.running = True
        self.paused = False
        self.restarting = False
        self.oom_killed = False
        self.pid = pid
        self.exit_code = 0
        self.error = ""
        self.started_at_ns = started_at_ns

    def set_stopped(self, exit_code: int, finished_at_ns: int, oom_killed: bool = False) -> None:
        """The main process ended: resolve not-running and next-exit waiters."""
        self.running = False
        self.restarting = False
        self._record_exit(exit_code, finished_at_ns, oom_killed)

    def set_restarting(self, exit_code: int, finished_at_ns: int, oom_killed: bool = False) -> None:
        """The main process ended and the restart policy will start it again (dockerd's
        ``SetRestarting``): still ``Running`` for the checks of rm/stop/kill/start, with
        ``Restarting`` set and no pid; not-running and next-exit waiters wake with the
        exit code."""
        self.running = True
        self.restarting = True
        self._record_exit(exit_code, finished_at_ns, oom_killed)

    def _record_exit(self, exit_code: int, finished_at_ns: int, oom_killed: bool) -> None:
        """What every exit records; not-running and next-exit waiters wake with it."""
        self.paused = False
        self.pid = 0
        self.exit_code = exit_code
        self.oom_killed = oom_killed
        self.finished_at_ns = finished_at_ns
        status = self.exit_status()
        self._resolve(WaitCondition.NOT_RUNNING, status)
        self._resolve(WaitCondition.NEXT_EXIT, status)

    def set_start_failed(self, exit_code: int, error: str) -> None:
        """dockerd keeps a container whose start failed in ``created`` with ExitCode/Error set."""
        self.running = False
        self.restarting = False
        self.pid = 0
        self.exit_code = exit_code
        self.error = error
        status = self.exit_status()
        self._resolve(WaitCondition.NEXT_EXIT, status)
        self._resolve(WaitCondition.NOT_RUNNING, status)

    def set_removal_in_progress(self, container_id: str) -> None:
        if self.removal_in_progress:
            raise Conflict(f"removal of container {container_id} is already in progress")
        self.removal_in_progress = True

    def reset_removal_in_progress(self) -> None:
        self.removal_in_progress = False

    def set_dead(self) -> None:
        self.dead = True

    def set_removed(self) -> None:
        """The container is gone: every remaining waiter gets the last exit code.

        The recorded start error is not repeated here: dockerd's ``removed`` waiters get
        none, and the CLI would print "Error waiting for container" for ``run --rm``.
        """
        status = ExitStatus(self.exit_code)
        for condition in list(self._waiters):
            self._resolve(condition, status)

    # waiters -----------------------------------------------------------------------

    def wait(self, condition: WaitCondition) -> asyncio.Future[ExitStatus]:
        """A future resolved when ``condition`` holds (at once for not-running if not running)."""
        future: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        if condition is WaitCondition.NOT_RUNNING and not self.running:
            future.set_result(self.exit_status())
            return future
        self._waiters.setdefault(condition, []).append(future)
        return future

    def _resolve(self, condition: WaitCondition, status: ExitStatus) -> None:
        for future in self._waiters.pop(condition, []):
            if not future.done():
                future.set_result(status)

    # persistence -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running, "paused": self.paused, "restarting": self.restarting,
            "oom_killed": self.oom_killed, "dead": self.dead, "pid": self.pid,
            "exit_code": self.exit_code, "error": self.error,
            "started_at_ns": self.started_at_ns, "finished_at_ns": self.finished_at_ns,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(
            running=bool(d.get("running", False)), paused=bool(d.get("paused", False)),
            restarting=bool(d.get("restarting", False)),
            oom_killed=bool(d.get("oom_killed", False)), dead=bool(d.get("dead", False)),
            pid=int(d.get("pid", 0)), exit_code=int(d.get("exit_code", 0)),
            error=str(d.get("error", "")), started_at_ns=int(d.get("started_at_ns", 0)),
            finished_at_ns=int(d.get("finished_at_ns", 0)),
        )


__all__ = ["Status", "WaitCondition", "ExitStatus", "State"]
