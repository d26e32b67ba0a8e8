"""``ProcessRuntime`` for the asyncio daemon: a client of the supervisor's control socket.

The protocol is documented in ``runtime.process.supervisor``. ``connect_or_spawn`` starts
the supervisor (in its own session, so it survives the daemon) when none is listening.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.errors import SystemError_, Unavailable
from runtime.process.contract import ExitReport, StartedProcess, start_failed
from runtime.process.supervisor import MAX_MESSAGE, SOCKET_NAME
from runtime.spec.model import ContainerSpec, ExecSpec

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How the supervisor is run: ``sys.executable`` with these arguments. -S: no site-packages
# (it needs only the stdlib and runtime, found through PYTHONPATH); site's .pth hooks alone
# cost it ~5 MB of RSS.
SUPERVISOR_ARGS = ("-S", "-m", "runtime.process.supervisor")
_MAX_FDS = 8


class SupervisorClient:
    """Implements :class:`runtime.process.contract.ProcessRuntime`."""

    def __init__(self, sock: socket.socket, process: subprocess.Popen[bytes] | None = None) -> None:
        self._sock = sock
        self._process = process
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[dict[str, Any], list[int]]]] = {}
        self._items: dict[int, list[tuple[dict[str, Any], list[int]]]] = {}
        self._callbacks: list[Callable[[ExitReport], None]] = []
        self._lost_callbacks: list[Callable[[], None]] = []
        self._undelivered: list[ExitReport] = []
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def connect(cls, exec_root: Path) -> SupervisorClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, str(exec_root / SOCKET_NAME))
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
        return cls(sock)

    # ---- ProcessRuntime ---------------------------------------------------------------

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        reply, fds = await self._request({"op": "start", "spec": spec.to_json()})
        return self._started(reply, fds)

    async def resume(self, container_id: str) -> None:
        reply, fds = await self._request({"op": "resume", "container_id": container_id})
        self._close_all(fds)
        self._check(reply)

    async def exec(self, spec: ExecSpec) -> StartedProcess:
        reply, fds = await self._request({"op": "exec", "spec": spec.to_json()})
        return self._started(reply, fds)

    async def signal(self, pid: int, signal: int) -> None:
        reply, fds = await self._request({"op": "signal", "pid": pid, "signal": signal})
        self._close_all(fds)
        self._check(reply)

    def on_exit(self, callback: Callable[[ExitReport], None]) -> None:
        """Exits are delivered with ``loop.call_soon``, after the task awaiting the start
        of the same process has resumed; record the pid before your next ``await``.
        Exits that happened while no daemon was connected arrive right after connecting;
        they are held until the first callback is registered."""
        self._callbacks.append(callback)
        held, self._undelivered = self._undelivered, []
        for report in held:
            self._loop.call_soon(self._deliver, report)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Called (soon, once) when the supervisor goes away without being asked to: it
        died, and the processes it started are nobody's children any more."""
        self._lost_callbacks.append(callback)

    async def running(self) -> list[tuple[str, str | None, StartedProcess]]:
        req = next(self._ids)
        self._items[req] = []
        try:
            reply, fds = await self._request({"op": "list"}, req)
            self._close_all(fds)
            items = self._items.get(req, [])
        finally:
            self._items.pop(req, None)
        result = []
        for body, item_fds in items:
            result.append((str(body["container_id"]), body.get("exec_id"),
                           self._process_of(body, item_fds)))
        return result

    async def shutdown_if_idle(self) -> bool:
        """Ask the supervisor to exit; it refuses (False) while any process it started is
        alive or an exit is unacknowledged, so containers are never orphaned."""
        reply, fds = await self._request({"op": "shutdown"})
        self._close_all(fds)
        return bool(reply.get("ok"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._fail_pending(Unavailable("supervisor connection closed"))

    # ---- plumbing ---------------------------------------------------------------------

    async def _request(self, msg: dict[str, Any],
                       req: int | None = None) -> tuple[dict[str, Any], list[int]]:
        if self._closed:
            raise Unavailable("supervisor connection closed")
        req = req if req is not None else next(self._ids)
        fut: asyncio.Future[tuple[dict[str, Any], list[int]]] = self._loop.create_future()
        self._pending[req] = fut
        data = json.dumps({**msg, "req": req}).encode()
        try:
            async with self._send_lock:
                await self._loop.sock_sendall(self._sock, data)
            return await fut
        finally:
            self._pending.pop(req, None)

    @staticmethod
    def _check(reply: dict[str, Any]) -> None:
        if not reply.get("ok"):
            raise start_failed(str(reply.get("step", "")), str(reply.get("text", "")))

    def _started(self, reply: dict[str, Any], fds: list[int]) -> StartedProcess:
        if not reply.get("ok"):
            self._close_all(fds)
            self._check(reply)
        return self._process_of(reply, fds)

    @staticmethod
    def _process_of(body: dict[str, Any], fds: list[int]) -> StartedProcess:
        named = dict(zip(body.get("fds", []), fds))
        for extra in fds[len(named):]:
            os.close(extra)
        return StartedProcess(pid=int(body["pid"]), stdin=named.get("stdin"),
                              stdout=named.get("stdout"), stderr=named.get("stderr"),
                              tty=bool(body.get("tty")))

    @staticmethod
    def _close_all(fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)

    def _on_readable(self) -> None:
        while not self._closed:
            try:
                data, fds, _flags, _ = socket.recv_fds(self._sock, MAX_MESSAGE, _MAX_FDS)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._close_all(fds)
                self._closed = True
                self._loop.remove_reader(self._sock.fileno())
                self._sock.close()
                self._fail_pending(Unavailable("supervisor connection lost"))
                for callback in self._lost_callbacks:
                    self._loop.call_soon(callback)
                return
            self._dispatch(json.loads(data), fds)

    def _dispatch(self, msg: dict[str, Any], fds: list[int]) -> None:
        if msg.get("event") == "exit":
            self._close_all(fds)
            report = ExitReport(str(msg["container_id"]), msg.get("exec_id"), int(msg["pid"]),
                                int(msg["exit_code"]), int(msg["finished_at_ns"]),
                                bool(msg.get("oom_killed", False)))
            # call_soon: a start reply read in the same batch wakes its awaiting task
            # first, so the caller can record the pid before hearing that it exited.
            self._loop.call_soon(self._deliver, report)
            return
        req = msg.get("req")
        if "item" in msg and isinstance(req, int) and req in self._items:
            self._items[req].append((msg["item"], fds))
            return
        fut = self._pending.get(req) if isinstance(req, int) else None
        if fut is None or fut.done():
            self._close_all(fds)
            return
        fut.set_result((msg, fds))

    def _deliver(self, report: ExitReport) -> None:
        if not self._callbacks:
            self._undelivered.append(report)  # e.g. exits from while no daemon was connected
            return
        for callback in list(self._callbacks):
            callback(report)
        if not self._closed:
            task = self._loop.create_task(self._ack(report.pid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ack(self, pid: int) -> None:
        try:
            reply, fds = await self._request({"op": "ack", "pid": pid})
            self._close_all(fds)
        except Unavailable:
            pass

    def _fail_pending(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        for items in self._items.values():
            for _body, fds in items:
                self._close_all(fds)
            items.clear()


def spawn_supervisor(exec_root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the supervisor detached; returns it and the read end of its ready pipe."""
    exec_root.mkdir(parents=True, exist_ok=True)
    os.chmod(exec_root, 0o700)
    r, w = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_PROJECT_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = open(exec_root / "supervisor.log", "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, *SUPERVISOR_ARGS, "--exec-root", str(exec_root), "--ready-fd", str(w)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=[w],
            start_new_session=True, env=env, cwd="/")
    finally:
        os.close(w)
        log.close()
    return proc, r


async def connect_or_spawn(exec_root: Path, timeout: float = 10.0) -> SupervisorClient:
    """Connect to the supervisor of ``exec_root``, starting it first if none listens."""
    try:
        return await SupervisorClient.connect(exec_root)
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    loop = asyncio.get_running_loop()
    proc, ready = spawn_supervisor(exec_root)
    try:
        byte = await asyncio.wait_for(loop.run_in_executor(None, os.read, ready, 1), timeout)
    finally:
        os.close(ready)
    if byte != b"1":
        raise SystemError_(f"supervisor failed to start (exit {proc.poll()}); see "
                           f"{exec_root / 'supervisor.log'}")
    client = await SupervisorClient.connect(exec_root)
    client._process = proc
    return client


__all__ = ["SupervisorClient", "connect_or_spawn", "spawn_supervisor", "SUPERVISOR_ARGS"]
