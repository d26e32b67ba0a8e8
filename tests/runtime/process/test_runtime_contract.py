"""The ``ProcessRuntime`` contract, run against every implementation (as containerd runs one
snapshotter suite against each snapshotter): ``SupervisorClient`` talking to a real
supervisor (root, busybox rootfs), and ``HostRuntime``, the fake the container-service and
router tests use. A unit test over the fake means something only while both pass here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from runtime.process.client import SupervisorClient
from runtime.process.contract import (
    ExitReport, ProcessRuntime, StartedProcess, StartFailed, StartInvalidConfig,
)
from runtime.spec.model import ContainerSpec, ExecSpec
from tests.runtime.containers.fakes import HostProcesses, HostRuntime
from tests.runtime.process.conftest import container_spec, needs_root, read_all

pytestmark = needs_root


class Subject:
    """One implementation under test: connects clients, records every exit by pid."""

    def __init__(self, connect: Callable[[], Awaitable[ProcessRuntime]],
                 rootfs: Path, tmp: Path) -> None:
        self._connect = connect
        self._rootfs = rootfs
        self._tmp = tmp
        self.clients: list[ProcessRuntime] = []
        self.exits: dict[int, asyncio.Future[ExitReport]] = {}
        self.pids: list[int] = []

    async def connect(self, listen: bool = True) -> ProcessRuntime:
        client = await self._connect()
        self.clients.append(client)
        if listen:
            client.on_exit(self.record)
        return client

    def record(self, report: ExitReport) -> None:
        fut = self.exit_of(report.pid)
        if not fut.done():
            fut.set_result(report)

    def exit_of(self, pid: int) -> asyncio.Future[ExitReport]:
        if pid not in self.exits:
            self.exits[pid] = asyncio.get_running_loop().create_future()
        return self.exits[pid]

    def spec(self, *args: str, **kw: bool) -> ContainerSpec:
        return container_spec(self._rootfs, self._tmp, *args, **kw)  # type: ignore[arg-type]

    async def start(self, rt: ProcessRuntime, spec: ContainerSpec) -> StartedProcess:
        proc = await rt.start(spec)
        self.pids.append(proc.pid)
        self.exit_of(proc.pid)
        return proc

    async def exited(self, pid: int, timeout: float = 10.0) -> ExitReport:
        return await asyncio.wait_for(asyncio.shield(self.exit_of(pid)), timeout)


def close_fds(*procs: StartedProcess) -> None:
    for p in procs:
        for fd in {p.stdin, p.stdout, p.stderr} - {None}:
            assert fd is not None
            os.close(fd)


async def reaped(rt: ProcessRuntime, pid: int) -> None:
    """Wait until ``pid`` is no longer listed as running (it has been reaped)."""
    for _ in range(500):
        listed = [p for _, _, p in await rt.running()]
        close_fds(*listed)
        if pid not in [p.pid for p in listed]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pid} still running")


async def read(fd: int | None) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, read_all, fd)


@pytest.fixture(params=["supervisor", "host-fake"])
async def subject(request: pytest.FixtureRequest, busybox_rootfs: Path,
                  tmp_path: Path) -> AsyncIterator[Subject]:
    if request.param == "supervisor":
        root: Path = request.getfixturevalue("supervisor_root")

        async def connect() -> ProcessRuntime:
            return await SupervisorClient.connect(root)
    else:
        host = HostProcesses()

        async def connect() -> ProcessRuntime:
            return HostRuntime(host)
    subject = Subject(connect, busybox_rootfs, tmp_path)
    yield subject
    # teardown through a fresh client: SIGKILL what is left, and hear (acknowledge) the exits
    sweeper = await subject.connect()
    for _, _, proc in await sweeper.running():
        close_fds(proc)
        if proc.pid in subject.pids:
            await sweeper.signal(proc.pid, 9)
    for pid in subject.pids:
        await subject.exited(pid)
    for client in subject.clients:
        await client.close()


async def test_output_and_exit_report(subject: Subject) -> None:
    rt = await subject.connect()
    spec = subject.spec("sh", "-c", "echo out; echo err >&2; exit 3")
    before = time.time_ns()
    proc = await subject.start(rt, spec)
    out, err = await asyncio.gather(read(proc.stdout), read(proc.stderr))
    report = await subject.exited(proc.pid)
    assert (out, err, proc.stdin, proc.tty) == ("out\n", "err\n", None, False)
    assert report == ExitReport(spec.container_id, None, proc.pid, 3, report.finished_at_ns)
    assert before <= report.finished_at_ns <= time.time_ns()


async def test_signal_death_is_128_plus_signal_and_late_signals_are_no_ops(
        subject: Subject) -> None:
    rt = await subject.connect()
    proc = await subject.start(rt, subject.spec("sleep", "30"))
    await rt.signal(proc.pid, 9)  # (SIGTERM: a container's pid 1 without a handler ignores it)
    assert (await subject.exited(proc.pid)).exit_code == 128 + 9
    await rt.signal(proc.pid, 9)  # already reaped: nothing happens, nothing raised
    close_fds(proc)


@pytest.mark.parametrize(("argv0", "code", "text"), [
    ("/no/such", 127, 'exec: "/no/such": stat /no/such: no such file or directory'),
    ("nosuchcmd", 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
    ("/etc/passwd", 126, "permission denied"),
])
async def test_start_failure_is_start_invalid_config(subject: Subject, argv0: str, code: int,
                                                     text: str) -> None:
    rt = await subject.connect()
    with pytest.raises(StartInvalidConfig) as info:
        await rt.start(subject.spec(argv0))
    assert info.value.exit_code == code and text in str(info.value)
    assert await rt.running() == []


async def test_tty_is_one_pty_master(subject: Subject) -> None:
    rt = await subject.connect()
    proc = await subject.start(rt, subject.spec("sh", "-c", "echo hi; echo err >&2", tty=True))
    assert proc.tty and proc.stderr is None and proc.stdin is not None
    assert proc.stdout is not None and os.path.samestat(os.fstat(proc.stdin),
                                                        os.fstat(proc.stdout))
    out = await read(proc.stdout)
    os.close(proc.stdin)
    assert out.split() == ["hi", "err"]
    assert (await subject.exited(proc.pid)).exit_code == 0


async def test_exec_reports_its_own_exit_and_needs_a_running_container(
        subject: Subject) -> None:
    rt = await subject.connect()
    spec = subject.spec("sleep", "30")
    init = await subject.start(rt, spec)
    proc = await rt.exec(ExecSpec(spec.container_id, "e1", dataclasses.replace(
        spec.process, args=("sh", "-c", "echo in; exit 4"))))
    subject.exit_of(proc.pid)
    assert (await read(proc.stdout), await read(proc.stderr)) == ("in\n", "")
    assert await subject.exited(proc.pid) == ExitReport(
        spec.container_id, "e1", proc.pid, 4, subject.exits[proc.pid].result().finished_at_ns)
    assert not subject.exit_of(init.pid).done()
    with pytest.raises(StartFailed, match="is not running"):
        await rt.exec(ExecSpec("nope", "e2", spec.process))
    close_fds(init)


async def test_running_lists_live_processes_with_fresh_fds(subject: Subject) -> None:
    rt = await subject.connect()
    spec = subject.spec("sleep", "30")
    init = await subject.start(rt, spec)
    proc = await rt.exec(ExecSpec(spec.container_id, "e1", dataclasses.replace(
        spec.process, args=("sleep", "30"))))
    subject.pids.append(proc.pid)
    listed = [(c, e, p) for c, e, p in await rt.running() if c == spec.container_id]
    assert sorted((c, e or "", p.pid) for c, e, p in listed) == sorted(
        [(spec.container_id, "", init.pid), (spec.container_id, "e1", proc.pid)])
    for _, _, fresh in listed:
        given = init if fresh.pid == init.pid else proc
        assert fresh.tty is False and fresh.stdout is not None and fresh.stderr is not None
        # new descriptors for the same pipes
        assert fresh.stdout != given.stdout and given.stdout is not None
        assert os.path.samestat(os.fstat(fresh.stdout), os.fstat(given.stdout))
    close_fds(*(p for _, _, p in listed))
    await rt.signal(proc.pid, 9)
    await subject.exited(proc.pid)
    assert [p.pid for c, _, p in await rt.running() if c == spec.container_id] == [init.pid]
    close_fds(*(p for _, _, p in await rt.running()))
    await rt.signal(init.pid, 9)
    await subject.exited(init.pid)
    assert [c for c, _, _ in await rt.running() if c == spec.container_id] == []
    close_fds(init, proc)


async def test_pause_before_exec_runs_nothing_until_resume(subject: Subject) -> None:
    rt = await subject.connect()
    spec = dataclasses.replace(subject.spec("echo", "resumed"), pause_before_exec=True)
    proc = await subject.start(rt, spec)
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdout, fcntl.F_SETFL, os.O_NONBLOCK)
    await asyncio.sleep(0.3)
    with pytest.raises(BlockingIOError):  # no output yet, and no EOF
        os.read(proc.stdout, 100)
    assert not subject.exit_of(proc.pid).done()
    listed = [p for _, _, p in await rt.running()]
    close_fds(*listed)
    assert proc.pid in [p.pid for p in listed]  # a paused start is live
    with pytest.raises(StartFailed, match="not waiting to start"):
        await rt.resume("nope")
    await rt.resume(spec.container_id)
    fcntl.fcntl(proc.stdout, fcntl.F_SETFL, 0)
    assert await read(proc.stdout) == "resumed\n"
    assert (await subject.exited(proc.pid)).exit_code == 0
    with pytest.raises(StartFailed, match="not waiting to start"):
        await rt.resume(spec.container_id)
    close_fds(dataclasses.replace(proc, stdout=None))


async def test_exits_are_held_until_a_callback_is_registered(subject: Subject) -> None:
    rt = await subject.connect(listen=False)
    proc = await rt.start(subject.spec("sh", "-c", "exit 7"))
    assert await read(proc.stdout) == ""
    close_fds(dataclasses.replace(proc, stdout=None))
    await reaped(rt, proc.pid)  # and reported meanwhile: nobody listens yet
    await asyncio.sleep(0.05)
    rt.on_exit(subject.record)
    assert (await subject.exited(proc.pid, 5)).exit_code == 7


async def test_close_leaves_processes_running_for_the_next_client(subject: Subject) -> None:
    first = await subject.connect()
    spec = subject.spec("sh", "-c", "read line; exit 5", open_stdin=True)
    proc = await subject.start(first, spec)
    await first.close()
    os.kill(proc.pid, 0)  # still alive
    assert not subject.exit_of(proc.pid).done()
    second = await subject.connect(listen=False)
    listed = [p for c, _, p in await second.running() if c == spec.container_id]
    assert [p.pid for p in listed] == [proc.pid]
    close_fds(*listed)
    assert proc.stdin is not None
    os.close(proc.stdin)  # EOF: the process exits while no callback is registered
    close_fds(dataclasses.replace(proc, stdin=None))
    await reaped(second, proc.pid)
    await asyncio.sleep(0.05)
    second.on_exit(subject.record)
    assert (await subject.exited(proc.pid, 5)).exit_code == 5
