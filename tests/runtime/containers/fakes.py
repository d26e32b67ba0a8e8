"""Fakes for the container service's neighbours: a host-process runtime (no namespaces),
an image backend and a writable-layer store. Shared by service and router tests."""

from __future__ import annotations

import asyncio
import functools
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.containers.model import RwLayer
from runtime.errors import ImageNotFound, Unavailable
from runtime.process.contract import ExitReport, StartedProcess, start_failed
from runtime.spec.model import ContainerSpec, ExecSpec, ProcessSpec


@dataclass
class FakeImage:
    id: str
    repo_tags: tuple[str, ...]
    config: dict[str, Any]


class FakeImages:
    def __init__(self) -> None:
        busybox = FakeImage("sha256:" + "b" * 64, ("busybox:latest",),
                            {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Cmd": ["sh"]})
        self.images: dict[str, FakeImage] = {"busybox:latest": busybox, busybox.id: busybox}
        self.committed: list[tuple[str, str, Mapping[str, Any], str | None, str, str]] = []
        self.checker: Callable[[str], list[str]] | None = None

    def get(self, ref: str) -> FakeImage:
        key = ref if ":" in ref else ref + ":latest"
        image = self.images.get(key) or self.images.get(ref)
        if image is None:
            raise ImageNotFound(key)
        return image

    def image_config(self, image: FakeImage) -> Mapping[str, Any]:
        return image.config

    def repo_tags(self, image: FakeImage) -> tuple[str, ...]:
        return image.repo_tags

    async def commit(self, parent_id: str, diff_dir: str, config: Mapping[str, Any],
                     repo_tag: str | None, comment: str, author: str,
                     container_id: str = "") -> str:
        self.committed.append((parent_id, diff_dir, config, repo_tag, comment, author))
        if repo_tag and repo_tag.startswith("docker.io/library/"):  # the CLI sends it normalised
            repo_tag = repo_tag[len("docker.io/library/"):]
        new = FakeImage("sha256:" + f"{len(self.committed):064x}", (repo_tag,) if repo_tag else (),
                        dict(config))
        self.images[new.id] = new
        if repo_tag:
            self.images[repo_tag] = new
        return new.id

    def set_usage_checker(self, checker: Callable[[str], list[str]],
                          running: Callable[[str], list[str]]) -> None:
        self.checker = checker


class FakeLayers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.removed: list[str] = []

    def prepare(self, container_id: str, image: Any) -> RwLayer:
        base = self.root / container_id
        (base / "diff").mkdir(parents=True)
        (base / "work").mkdir()
        return RwLayer(str(base / "diff"), str(base / "work"), ("/lower",), container_id)

    def remove(self, container_id: str) -> None:
        self.removed.append(container_id)

    def size(self, container_id: str) -> int:
        return 0


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    container_id: str
    exec_id: str | None
    pidfd: int
    tty: bool
    kept: tuple[int, ...]            # our copies of stdout/stderr (or the pty master)
    gate: int | None = None          # write end the paused process waits on (pause_before_exec)


@functools.cache
def _applets() -> frozenset[str]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return frozenset(out.stdout.split())


BUSYBOX = "/bin/busybox"
# A paused start: the process (already with its final pid) waits for EOF on the gate fd, then
# execs its argv; the host-process analogue of the supervisor's Created/Resume.
_GATE = 'read -r _ <&{fd}; exec {fd}<&-; exec "$0" "$@"'


class HostProcesses:
    """The fake's supervisor: host processes that outlive any one :class:`HostRuntime`
    (a client), exits held while no client is connected."""

    def __init__(self) -> None:
        self.procs: dict[int, _Proc] = {}
        self.clients: list[HostRuntime] = []
        self.held: list[ExitReport] = []

    def reap(self, pid: int) -> None:
        proc = self.procs.pop(pid)
        asyncio.get_running_loop().remove_reader(proc.pidfd)
        os.close(proc.pidfd)
        for fd in (*proc.kept, *((proc.gate,) if proc.gate is not None else ())):
            os.close(fd)
        status = proc.popen.wait()
        report = ExitReport(proc.container_id, proc.exec_id, pid,
                            128 - status if status < 0 else status, time.time_ns())
        if not self.clients:
            self.held.append(report)
        for client in list(self.clients):
            client.deliver(report)

    async def kill_all(self, timeout: float = 5.0) -> None:
        """Test teardown (what a host reboot would do): SIGKILL every process, await reaping."""
        for pid in list(self.procs):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while self.procs and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


class HostRuntime:
    """A ``ProcessRuntime`` that runs the spec's argv as a plain host process (busybox
    applets for bare names), without namespaces. It keeps the same contract as
    ``SupervisorClient`` (tests/runtime/process/test_runtime_contract.py runs one suite against
    both): exits reported (held until a callback is registered or a client connects),
    ``running`` lists live processes with fresh fds, ``pause_before_exec`` waits for
    ``resume``, ``close`` only disconnects. ``HostRuntime(old.host)`` is a reconnect;
    ``kill_all`` is the tests' teardown."""

    def __init__(self, host: HostProcesses | None = None) -> None:
        self.host = host if host is not None else HostProcesses()
        self.callbacks: list[Callable[[ExitReport], None]] = []
        self.signals: list[tuple[int, int]] = []
        self.specs: list[ContainerSpec] = []
        self.closed = False
        self._undelivered, self.host.held = self.host.held, []
        self.host.clients.append(self)

    @property
    def procs(self) -> dict[int, _Proc]:
        return self.host.procs

    def on_exit(self, callback: Callable[[ExitReport], None]) -> None:
        self.callbacks.append(callback)
        held, self._undelivered = self._undelivered, []
        for report in held:
            asyncio.get_running_loop().call_soon(self.deliver, report)

    def deliver(self, report: ExitReport) -> None:
        if not self.callbacks:
            self._undelivered.append(report)
        for callback in list(self.callbacks):
            callback(report)

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        self._check_open()
        self.specs.append(spec)
        return self._spawn(spec.container_id, None, spec.process, spec.pause_before_exec)

    async def exec(self, spec: ExecSpec) -> StartedProcess:
        self._check_open()
        if not any(p.container_id == spec.container_id and p.exec_id is None and p.gate is None
                   for p in self.procs.values()):
            raise start_failed("exec", f"container {spec.container_id} is not running")
        return self._spawn(spec.container_id, spec.exec_id, spec.process, False)

    def _spawn(self, container_id: str, exec_id: str | None, process: ProcessSpec,
               paused: bool) -> StartedProcess:
        args = [*self._resolve(process.args[0]), *process.args[1:]]
        env = dict(e.split("=", 1) for e in process.env if "=" in e)
        gate_r, gate_w = os.pipe() if paused else (None, None)
        if gate_r is not None:
            args = [BUSYBOX, "sh", "-c", _GATE.format(fd=gate_r), *args]
        if process.tty:
            master, slave = pty.openpty()
            popen = self._popen(args, env, slave, slave, slave, gate_r)
            os.close(slave)
            started = StartedProcess(popen.pid, master, os.dup(master), None, True)
            kept: tuple[int, ...] = (os.dup(master),)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if process.open_stdin else (None, None)
            popen = self._popen(args, env, in_r, out_w, err_w, gate_r)
            for fd in (out_w, err_w, in_r):
                if fd is not None:
                    os.close(fd)
            started = StartedProcess(popen.pid, in_w, out_r, err_r, False)
            kept = (os.dup(out_r), os.dup(err_r))
        if gate_r is not None:
            os.close(gate_r)
        pidfd = os.pidfd_open(popen.pid)
        self.procs[popen.pid] = _Proc(popen, container_id, exec_id, pidfd, process.tty, kept,
                                      gate_w)
        asyncio.get_running_loop().add_reader(pidfd, self.host.reap, popen.pid)
        return started

    @staticmethod
    def _popen(args: list[str], env: dict[str, str], stdin: int | None, stdout: int,
               stderr: int, gate: int | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, env=env, start_new_session=True,
                                pass_fds=(gate,) if gate is not None else ())

    @staticmethod
    def _resolve(name: str) -> list[str]:
        """Like the container init's lookup, with dockerd's texts (StartInvalidConfig)."""
        if "/" not in name:
            if name not in _applets():
                raise start_failed("lookup", f'exec: "{name}": executable file not found in $PATH')
            return [BUSYBOX, name]
        if not os.path.exists(name):
            raise start_failed("exec", f'exec: "{name}": stat {name}: no such file or directory')
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise start_failed("exec", f'exec: "{name}": permission denied')
        return [name]

    async def resume(self, container_id: str) -> None:
        self._check_open()
        for proc in self.procs.values():
            if proc.container_id == container_id and proc.exec_id is None and proc.gate is not None:
                gate, proc.gate = proc.gate, None
                os.close(gate)  # EOF: the waiting shell execs the argv
                return
        raise start_failed("resume", f"container {container_id} is not waiting to start")

    async def signal(self, pid: int, sig: int) -> None:
        self._check_open()
        self.signals.append((pid, sig))
        if pid in self.procs:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass

    async def running(self) -> list[tuple[str, str | None, StartedProcess]]:
        self._check_open()
        result = []
        for pid, proc in self.procs.items():
            if proc.tty:
                fresh = StartedProcess(pid, os.dup(proc.kept[0]), os.dup(proc.kept[0]), None, True)
            else:
                fresh = StartedProcess(pid, None, os.dup(proc.kept[0]), os.dup(proc.kept[1]), False)
            result.append((proc.container_id, proc.exec_id, fresh))
        return result

    async def close(self) -> None:
        """Disconnect: the processes keep running; their exits wait for the next client."""
        self.closed = True
        if self in self.host.clients:
            self.host.clients.remove(self)

    async def kill_all(self) -> None:
        await self.host.kill_all()

    def _check_open(self) -> None:
        if self.closed:
            raise Unavailable("supervisor connection closed")
