"""The supervisor: one small single-threaded process that starts and reaps every container.

Run as ``python3 -m runtime.process.supervisor --exec-root <dir>``; the engine starts it
(``client.connect_or_spawn``) in its own session so it outlives a daemon restart. It is a
child subreaper, forks one child per container start or exec (cheap: this process is
small and has no threads), and never runs inside the asyncio daemon.

Control protocol (``<exec-root>/supervisor.sock``, directory 0700, peers must be uid 0):
``SOCK_SEQPACKET``, so every packet is exactly one message (the packet boundary is the
length prefix) and fds sent with SCM_RIGHTS arrive with the message that names them. A
message is one UTF-8 JSON object.

Requests (daemon -> supervisor), each with an integer ``req`` echoed in its reply:

- ``{"op": "start", "spec": <ContainerSpec.to_json()>}``
- ``{"op": "exec", "spec": <ExecSpec.to_json()>}``
- ``{"op": "resume", "container_id": id}`` (after a start with ``pause_before_exec``)
- ``{"op": "signal", "pid": n, "signal": n}`` (only pids this supervisor started)
- ``{"op": "list"}``: one ``{"req", "item": {...}}`` per live process, then the reply
- ``{"op": "ack", "pid": n}``: an exit event was handled; forget it
- ``{"op": "shutdown"}``: exit if no process is alive and every exit was acknowledged
  (a clean daemon stop); otherwise refused, and the supervisor keeps running

Replies: ``{"req": n, "ok": true, ...}`` or ``{"req": n, "ok": false, "step": s, "text": t}``.
A start/exec/list-item reply carries ``pid``, ``tty``, ``container_id``, ``exec_id`` and
``fds``: the names (``stdin``, ``stdout``, ``stderr``) of the attached fds, in order. The
supervisor keeps its own copies of stdout/stderr (or the pty master) for ``list``; it does
not keep the stdin write end, so closing the daemon's copy gives the process EOF.

Events (supervisor -> every connection): ``{"event": "exit", "container_id", "exec_id",
"pid", "exit_code", "finished_at_ns"}``; exit_code is 128+signal for a signal death. An
exit is re-sent to each new connection until acknowledged, and written under
``<exec-root>/supervisor/exits/`` while no daemon is connected.

The control socket itself is :mod:`runtime.process.control`; the fork, the child's stdio
and the child's first steps are :mod:`runtime.process.forking`; what the child then runs
is :mod:`runtime.process.init`.
"""

from __future__ import annotations

import array  # noqa: F401  socket.send_fds imports it lazily: load it before any fork
import dataclasses
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.linux import syscalls as S
from runtime.linux.heap import trim_heap
from runtime.linux.seccomp import CompiledFilter, FilterCache, SeccompError
from runtime.linux.syscalls import LinuxSyscalls
from runtime.process import init as init_mod
from runtime.process import sync
from runtime.process.control import MAX_MESSAGE, SOCKET_NAME, Conn, ControlServer
from runtime.process.forking import Forker, exit_code, plan_stdio
from runtime.process.oomwatch import OomWatch
from runtime.spec.defaults import DEFAULT_CAPABILITIES, all_host_capabilities
from runtime.spec.model import ContainerSpec, ExecSpec, ProcessSpec
from runtime.spec.seccomp import ProfileError, resolve
from runtime.spec.seccomp_default import DEFAULT_PROFILE
from runtime.statefile import ensure_private_dir, write_json_atomic


@dataclass
class Proc:
    container_id: str
    exec_id: str | None
    pid: int
    tty: bool
    sync: socket.socket | None
    state: str = "starting"                     # starting, paused, running, failed
    stdin: int | None = None                    # handed to the daemon once, then closed
    stdout: int | None = None                   # kept for re-attach
    stderr: int | None = None
    master: int | None = None
    pending: tuple[Conn, int] | None = None     # request awaiting the start/resume reply
    failure: tuple[str, str] | None = None
    cgroup_dirs: tuple[str, ...] = ()
    exit_status: int | None = None              # reaped before the sync channel drained
    seccomp: CompiledFilter | None = None       # the container's filter, for its execs too


class Supervisor:
    def __init__(self, exec_root: Path) -> None:
        self.exec_root = exec_root
        self.state_dir = exec_root / "supervisor"
        self.exits_dir = self.state_dir / "exits"
        # absolute: init may mount the rootfs from another cwd (RootfsSpec.chdir)
        self.rootfs_mount = os.path.abspath(self.state_dir / "rootfs")
        self.sc = LinuxSyscalls()
        self.sel = selectors.DefaultSelector()
        self.control = ControlServer(self.sel, self._handle, self._on_connect)
        self.conns = self.control.conns
        self.procs: dict[int, Proc] = {}
        self.containers: dict[str, Proc] = {}
        self.unacked: dict[int, dict[str, Any]] = {}
        self.running = True
        self.oom = OomWatch()
        # Each distinct profile is compiled here once; children only load the program.
        self.filters = FilterCache()
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            self.last_cap = int(f.read())

    # ---- setup ----------------------------------------------------------------------

    def bind(self) -> None:
        ensure_private_dir(self.exec_root)
        for d in (self.state_dir, self.exits_dir, Path(self.rootfs_mount)):
            ensure_private_dir(d)
        self.lock_fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                               0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit("supervisor: another supervisor owns " + str(self.exec_root))
        self.control.listen(self.exec_root / SOCKET_NAME)
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.forker = Forker(self.sc, os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
        self.sc.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_r = rfd
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.sel.register(rfd, selectors.EVENT_READ, self._on_wakeup)
        self.sel.register(self.oom.fd, selectors.EVENT_READ, lambda _ev: self.oom.on_ready())
        for entry in sorted(self.exits_dir.glob("*.json")):
            try:
                report = json.loads(entry.read_bytes())
                self.unacked[int(report["pid"])] = report
            except (OSError, ValueError, KeyError):
                entry.unlink(missing_ok=True)
        with open(self.state_dir / "supervisor.pid", "w", encoding="ascii") as f:
            f.write(str(os.getpid()))

    def warm_up(self) -> None:
        """Compile Docker's default filter for the default capabilities now: the profile
        most containers get, so their first start does not wait for libseccomp."""
        try:
            profile = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES)
            if profile is not None:
                self.filters.get(profile)
        except (SeccompError, ProfileError):
            pass  # reported by the first start that needs it

    def _on_term(self, *_: object) -> None:
        self.running = False

    def serve(self) -> None:
        while self.running:
            for key, events in self.sel.select():
                callback: Callable[[int], None] = key.data
                callback(events)

    # ---- requests -------------------------------------------------------------------

    def _on_connect(self, conn: Conn) -> None:
        for report in self.unacked.values():
            self._send(conn, report)

    def _send(self, conn: Conn, obj: dict[str, Any], fds: list[int] | None = None) -> None:
        """Queue ``obj``; ``fds`` become owned by the queue and are closed once sent."""
        self.control.send(conn, obj, fds)

    def _handle(self, conn: Conn, msg: dict[str, Any]) -> None:
        op, req = msg.get("op"), int(msg.get("req") or 0)
        if op == "start":
            self._start(conn, req, ContainerSpec.from_json(msg["spec"]))
        elif op == "exec":
            self._exec(conn, req, ExecSpec.from_json(msg["spec"]))
        elif op == "resume":
            self._resume(conn, req, str(msg["container_id"]))
        elif op == "signal":
            proc = self.procs.get(int(msg["pid"]))
            if proc is not None and proc.exit_status is None:
                try:
                    os.kill(proc.pid, int(msg["signal"]))
                except ProcessLookupError:
                    pass
            self._send(conn, {"req": req, "ok": True})
        elif op == "list":
            for proc in list(self.procs.values()):
                if proc.state in ("running", "paused") and proc.exit_status is None:
                    self._reply_started(conn, req, proc, item=True)
            self._send(conn, {"req": req, "ok": True})
        elif op == "ack":
            pid = int(msg["pid"])
            self.unacked.pop(pid, None)
            (self.exits_dir / f"{pid}.json").unlink(missing_ok=True)
            self._send(conn, {"req": req, "ok": True})
        elif op == "shutdown":
            alive = [p for p in self.procs.values() if p.exit_status is None]
            if alive or self.unacked:
                self._send(conn, {"req": req, "ok": False, "step": "shutdown",
                                  "text": f"{len(alive)} processes alive, {len(self.unacked)} exits unacknowledged"})
            else:
                self._send(conn, {"req": req, "ok": True})
                self.running = False
        else:
            self._send(conn, {"req": req, "ok": False, "step": "request",
                              "text": f"unknown op {op!r}"})

    # ---- start / exec ---------------------------------------------------------------

    def _launch(self, conn: Conn, req: int, container_id: str, exec_id: str | None,
                process: ProcessSpec, pid_ns: str | None, new_pid_ns: bool,
                make_steps: Callable[[], list[init_mod.Step]], state_extra: dict[str, Any]) -> Proc:
        parent_sock, child_sock = sync.socketpair()
        plan = plan_stdio(process, self.devnull)
        stdio, child_close, ours = plan.child, plan.child_close, plan.ours
        channel = sync.SocketChannel(child_sock)

        def body() -> None:
            parent_sock.close()
            state = init_mod.InitState(sc=self.sc, channel=channel, process=process,
                                       stdio=stdio, last_cap=self.last_cap, **state_extra)
            try:
                init_mod.run_steps(make_steps(), state)
            except init_mod.InitError as exc:
                sync.send(child_sock, sync.ExecFailed(exc.step, exc.text))
            except BaseException as exc:
                sync.send(child_sock, sync.ExecFailed("init", f"{type(exc).__name__}: {exc}"))

        try:
            pid = self.forker.fork(pid_ns, new_pid_ns, body)
        except BaseException:
            for f in child_close + list(ours.values()):
                os.close(f)
            parent_sock.close()
            child_sock.close()
            raise
        child_sock.close()
        for f in child_close:
            os.close(f)
        proc = Proc(container_id, exec_id, pid, process.tty, parent_sock,
                    stdin=ours.get("stdin"), stdout=ours.get("stdout"),
                    stderr=ours.get("stderr"), pending=(conn, req))
        self.procs[pid] = proc
        parent_sock.setblocking(False)
        self.sel.register(parent_sock, selectors.EVENT_READ, lambda _ev: self._on_sync(proc))
        return proc

    def _start(self, conn: Conn, req: int, spec: ContainerSpec) -> None:
        existing = self.containers.get(spec.container_id)
        if existing is not None and existing.exit_status is None and existing.state != "failed":
            self._send(conn, {"req": req, "ok": False, "step": "start",
                              "text": f"container {spec.container_id} is already running"})
            return
        compiled = None
        if spec.seccomp is not None:
            try:
                compiled = self.filters.get(spec.seccomp)
            except SeccompError as exc:
                self._send(conn, {"req": req, "ok": False, "step": "seccomp",
                                  "text": f"unable to init seccomp: {exc}"})
                return
        pid_mode = spec.namespaces.get("pid", "")
        proc = self._launch(
            conn, req, spec.container_id, None, spec.process,
            pid_ns=pid_mode or None, new_pid_ns="pid" in spec.namespaces and pid_mode is None,
            make_steps=lambda: init_mod.container_steps(spec),
            state_extra={"rootfs_mount": self.rootfs_mount, "cgroup_dirs": spec.cgroup_dirs,
                         "seccomp": compiled})
        proc.cgroup_dirs = spec.cgroup_dirs
        proc.seccomp = compiled
        self.oom.watch(proc.pid, spec.cgroup_dirs)
        self.containers[spec.container_id] = proc

    def _exec(self, conn: Conn, req: int, spec: ExecSpec) -> None:
        init = self.containers.get(spec.container_id)
        if init is None or init.exit_status is not None or init.state != "running":
            self._send(conn, {"req": req, "ok": False, "step": "exec",
                              "text": f"container {spec.container_id} is not running"})
            return
        process = spec.process
        if spec.privileged:
            process = dataclasses.replace(process, capabilities=all_host_capabilities())
        self._launch(
            conn, req, spec.container_id, spec.exec_id, process,
            pid_ns=f"/proc/{init.pid}/ns/pid", new_pid_ns=False,
            make_steps=lambda: init_mod.exec_steps(spec),
            state_extra={"init_pid": init.pid, "cgroup_dirs": init.cgroup_dirs,
                         "seccomp": init.seccomp})

    def _resume(self, conn: Conn, req: int, container_id: str) -> None:
        proc = self.containers.get(container_id)
        if proc is None or proc.state != "paused" or proc.sync is None:
            self._send(conn, {"req": req, "ok": False, "step": "resume",
                              "text": f"container {container_id} is not waiting to start"})
            return
        proc.pending = (conn, req)
        proc.state = "starting"
        try:
            sync.send(proc.sync, sync.Resume())
        except OSError:
            pass  # the child died; the EOF path reports it

    def _on_sync(self, proc: Proc) -> None:
        while proc.sync is not None:
            try:
                msg = sync.recv(proc.sync)
            except BlockingIOError:
                return
            except (OSError, ValueError) as exc:
                proc.failure = proc.failure or ("sync", str(exc))
                msg = sync.Eof()
            if isinstance(msg, sync.PtyMaster):
                proc.master = msg.fd
            elif isinstance(msg, sync.ExecFailed):
                proc.failure = (msg.step, msg.text)
            elif isinstance(msg, sync.Created):
                proc.state = "paused"
                self._reply_pending(proc)
            elif isinstance(msg, sync.Eof):
                self.sel.unregister(proc.sync)
                proc.sync.close()
                proc.sync = None
                if proc.failure is None:
                    proc.state = "running"
                    self._reply_pending(proc)
                else:
                    self._fail(proc)
                if proc.exit_status is not None:
                    self._finish(proc)

    def _reply_pending(self, proc: Proc) -> None:
        if proc.pending is None:
            return
        conn, req = proc.pending
        proc.pending = None
        if conn.sock.fileno() < 0:
            return
        self._reply_started(conn, req, proc)

    def _reply_started(self, conn: Conn, req: int, proc: Proc, item: bool = False) -> None:
        names: list[str] = []
        fds: list[int] = []
        if proc.tty:
            if proc.master is not None:
                names, fds = ["stdin", "stdout"], [os.dup(proc.master), os.dup(proc.master)]
        else:
            if proc.stdin is not None:
                names.append("stdin")
                fds.append(proc.stdin)
                proc.stdin = None  # ownership moves to the daemon
            for name, fd in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                if fd is not None:
                    names.append(name)
                    fds.append(os.dup(fd))
        body = {"container_id": proc.container_id, "exec_id": proc.exec_id, "pid": proc.pid,
                "tty": proc.tty, "fds": names, "state": proc.state}
        if item:
            self._send(conn, {"req": req, "item": body}, fds)
        else:
            self._send(conn, {"req": req, "ok": True, **body}, fds)

    def _fail(self, proc: Proc) -> None:
        proc.state = "failed"
        step, text = proc.failure or ("init", "unknown error")
        if proc.pending is not None:
            conn, req = proc.pending
            proc.pending = None
            if conn.sock.fileno() >= 0:
                self._send(conn, {"req": req, "ok": False, "step": step, "text": text})
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # ---- exits ------------------------------------------------------------------------

    def _on_wakeup(self, _events: int) -> None:
        try:
            while os.read(self.wakeup_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.get(pid)
            if proc is None:
                continue
            proc.exit_status = status
            if proc.sync is not None:
                self._on_sync(proc)  # the child is gone: drains to EOF and finishes
            else:
                self._finish(proc)

    def _finish(self, proc: Proc) -> None:
        assert proc.exit_status is not None
        self.procs.pop(proc.pid, None)
        if self.containers.get(proc.container_id) is proc:
            del self.containers[proc.container_id]
        for fd in (proc.stdin, proc.stdout, proc.stderr, proc.master):
            if fd is not None:
                os.close(fd)
        proc.stdin = proc.stdout = proc.stderr = proc.master = None
        oom_killed = self.oom.finish(proc.pid)
        if proc.state == "failed" or proc.failure is not None:
            return
        report = {"event": "exit", "container_id": proc.container_id, "exec_id": proc.exec_id,
                  "pid": proc.pid, "exit_code": exit_code(proc.exit_status),
                  "finished_at_ns": time.time_ns(), "oom_killed": oom_killed}
        self.unacked[proc.pid] = report
        if not self.conns:
            write_json_atomic(self.exits_dir / f"{proc.pid}.json", report)
        for conn in list(self.conns.values()):
            self._send(conn, report)


USAGE = "usage: python3 -m runtime.process.supervisor --exec-root DIR [--ready-fd FD]"


def _parse_args(argv: list[str]) -> tuple[Path, int]:
    """``--exec-root DIR`` (required) and ``--ready-fd FD`` (write one byte there once the
    socket listens, then close it). Not argparse: it would cost the supervisor 1.4 MB."""
    values: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        name, eq, value = item.partition("=")
        if name not in ("--exec-root", "--ready-fd"):
            raise SystemExit(f"{USAGE}\nunknown argument: {item}")
        values[name] = value if eq else next(items, "")
    if not values.get("--exec-root"):
        raise SystemExit(f"{USAGE}\n--exec-root is required")
    try:
        ready_fd = int(values.get("--ready-fd", "-1"))
    except ValueError:
        raise SystemExit(f"{USAGE}\n--ready-fd: not a number") from None
    return Path(values["--exec-root"]), ready_fd


def main(argv: list[str] | None = None) -> int:
    exec_root, ready_fd = _parse_args(sys.argv[1:] if argv is None else argv)
    sup = Supervisor(exec_root)
    sup.bind()
    if ready_fd >= 0:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    sup.warm_up()  # requests wait in the socket backlog meanwhile
    gc.freeze()  # keep start-up objects out of collections, so forks share their pages
    trim_heap()  # what imports and the seccomp compile freed: 1 MB
    sup.serve()
    (exec_root / SOCKET_NAME).unlink(missing_ok=True)
    return 0


__all__ = ["SOCKET_NAME", "MAX_MESSAGE", "Proc", "Supervisor", "main"]


if __name__ == "__main__":
    sys.exit(main())
