"""Lifecycle as dockerd: kill waits for the exit, the restart back-off is ``restarting``,
and one exit transition (owned by the container service) runs its steps in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.containers.model import HostConfig, RestartPolicy
from runtime.containers.service import ContainerService
from runtime.containers.state import Status, WaitCondition
from runtime.errors import Conflict, ContainerNotFound, SystemError_
from runtime.events import EventBus
from runtime.process.contract import StartedProcess, StartSystemError
from runtime.spec.model import ContainerSpec
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime
from tests.runtime.containers.test_service import actions, cfg


class RecordingRuntime(HostRuntime):
    def __init__(self, steps: list[str]) -> None:
        super().__init__()
        self.steps = steps

    async def start(self, spec: ContainerSpec) -> StartedProcess:
        self.steps.append("start paused" if spec.pause_before_exec else "start")
        return await super().start(spec)

    async def resume(self, container_id: str) -> None:
        self.steps.append("resume")
        await super().resume(container_id)


class FakeSteps:
    """Networking steps that record their order and what the state was meanwhile."""

    def __init__(self, steps: list[str], svc: list[ContainerService]) -> None:
        self.steps = steps
        self.svc = svc
        self.attach_delay = 0.0
        self.fail_attach = False

    async def prepare(self, spec: ContainerSpec) -> ContainerSpec:
        self.steps.append("prepare")
        return replace(spec, pause_before_exec=True)

    async def attach(self, spec: ContainerSpec, pid: int) -> None:
        self.steps.append("attach")
        await asyncio.sleep(self.attach_delay)
        if self.fail_attach:
            raise StartSystemError("network", "boom", 128, message="failed to set up container "
                                   "networking: boom")

    async def detach(self, container_id: str, pid: int | None) -> None:
        state = self.svc[0].get(container_id).state
        self.steps.append(f"detach running={state.running}")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[ContainerService, list[str], FakeSteps]]:
    steps: list[str] = []
    runtime = RecordingRuntime(steps)
    holder: list[ContainerService] = []
    fake = FakeSteps(steps, holder)
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    holder.append(service)
    service.set_network_steps(fake)
    await service.load()
    yield service, steps, fake
    await runtime.kill_all()


@pytest.fixture
def svc(stack: tuple[ContainerService, list[str], FakeSteps]) -> ContainerService:
    return stack[0]


def always(**kw: object) -> HostConfig:
    return HostConfig(restart_policy=RestartPolicy("always"), **kw)  # type: ignore[arg-type]


async def test_kill_returns_once_the_exit_is_recorded(svc: ContainerService) -> None:
    cid = (await svc.create(cfg("sleep", "30"))).id
    await svc.start(cid)
    await svc.kill(cid)
    state = svc.get(cid).state
    assert (state.running, state.exit_code, state.status) == (False, 137, Status.EXITED)
    assert actions(svc)[-2:] == ["kill", "die"]
    assert (await svc.wait(cid, WaitCondition.NOT_RUNNING)).exit_code == 137
    await svc.remove(cid)  # never 409 "container is running"
    with pytest.raises(ContainerNotFound):
        svc.get(cid)


async def test_kill_with_another_signal_returns_at_once(svc: ContainerService) -> None:
    cid = (await svc.create(cfg("sleep", "30"))).id
    await svc.start(cid)
    await svc.kill(cid, "SIGCONT")
    assert svc.get(cid).state.running
    await svc.kill(cid)
    assert not svc.get(cid).state.running


async def test_start_and_exit_steps_run_in_order(
        stack: tuple[ContainerService, list[str], FakeSteps]) -> None:
    svc, steps, _ = stack
    cid = (await svc.create(cfg("sleep", "30"))).id
    await svc.start(cid)
    assert steps == ["prepare", "start paused", "attach", "resume"]
    await svc.kill(cid)
    # networking is released while the container still counts as running: no API call sees
    # it stopped with its network still attached
    assert steps[-1] == "detach running=True"


async def test_an_exit_during_the_start_is_handled_after_it(
        stack: tuple[ContainerService, list[str], FakeSteps]) -> None:
    svc, steps, fake = stack
    fake.attach_delay = 0.5  # the fake runtime does not pause: `true` exits meanwhile
    cid = (await svc.create(cfg("true"))).id
    waiter = svc.wait(cid, WaitCondition.NEXT_EXIT)
    await svc.start(cid)
    assert (await waiter).exit_code == 0
    assert actions(svc) == ["create", "start", "die"]
    assert steps[-1] == "detach running=True"
    assert svc.get(cid).state.status == Status.EXITED


async def test_a_failed_network_attach_fails_the_start_without_an_exit(
        stack: tuple[ContainerService, list[str], FakeSteps]) -> None:
    svc, steps, fake = stack
    fake.fail_attach = True
    cid = (await svc.create(cfg("sleep", "30"))).id
    with pytest.raises(StartSystemError, match="failed to set up container networking"):
        await svc.start(cid)
    await asyncio.sleep(0.2)  # the killed init's exit report must change nothing
    state = svc.get(cid).state
    assert (state.status, state.exit_code) == (Status.CREATED, 128)
    assert "die" not in actions(svc)
    assert steps[-1] == "detach running=False"


async def _restarting(svc: ContainerService, code: int = 3) -> str:
    """A container with restart ``always`` that has just exited with ``code`` and waits
    out a long back-off."""
    cid = (await svc.create(cfg("sh", "-c", f"sleep 0.2; exit {code}", host=always()))).id
    waiter = svc.wait(cid, WaitCondition.NEXT_EXIT)
    await svc.start(cid)
    svc.live[cid].restart_delay = 30.0  # the next back-off is a minute
    assert (await waiter).exit_code == code
    return cid


async def test_back_off_is_restarting(svc: ContainerService) -> None:
    cid = await _restarting(svc)
    state = svc.get(cid).state
    assert (state.running, state.restarting, state.pid, state.exit_code) == (True, True, 0, 3)
    assert state.status == Status.RESTARTING and svc.get(cid).restart_count == 1
    with pytest.raises(Conflict, match="container is restarting: stop the container before "
                                       "removing or force remove"):
        await svc.remove(cid)
    # not-running waiters keep waiting: a restarting container still counts as running
    assert not svc.wait(cid, WaitCondition.NOT_RUNNING).done()


async def test_stop_cancels_the_back_off(svc: ContainerService) -> None:
    cid = await _restarting(svc)
    starts = len(svc.runtime.specs)  # type: ignore[attr-defined]
    await svc.stop(cid)
    state = svc.get(cid).state
    assert (state.status, state.exit_code, state.restarting) == (Status.EXITED, 3, False)
    assert svc.live[cid].restart_task is None
    assert len(svc.runtime.specs) == starts  # type: ignore[attr-defined]
    await svc.remove(cid)


async def test_kill_cancels_the_back_off(svc: ContainerService) -> None:
    cid = await _restarting(svc)
    await svc.kill(cid)
    state = svc.get(cid).state
    assert (state.status, state.exit_code) == (Status.EXITED, 3)
    assert "kill" not in actions(svc)  # dockerd: nothing to signal, only the monitor is told


async def test_force_remove_cancels_the_back_off(svc: ContainerService) -> None:
    cid = await _restarting(svc)
    removed = svc.wait(cid, WaitCondition.REMOVED)
    await svc.remove(cid, force=True)
    assert (await removed).exit_code == 3
    with pytest.raises(ContainerNotFound):
        svc.get(cid)


async def test_back_off_then_start_again(svc: ContainerService) -> None:
    cid = (await svc.create(cfg("sh", "-c", "exit 1", host=HostConfig(
        restart_policy=RestartPolicy("on-failure", 2))))).id
    await svc.start(cid)
    for _ in range(200):
        container = svc.get(cid)
        if container.restart_count == 2 and container.state.status == Status.EXITED:
            break
        await asyncio.sleep(0.05)
    assert (container.restart_count, container.state.status) == (2, Status.EXITED)
    assert actions(svc).count("start") == 3 and actions(svc).count("die") == 3


def test_which_containers_get_the_init(tmp_path: Path) -> None:
    """--init: the binary runs as PID 1 when HostConfig.Init (or the daemon default) asks,
    in a private PID namespace only, as dockerd."""
    svc = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                           FakeLayers(tmp_path / "layers"), HostRuntime())
    tool = tmp_path / "tini"
    tool.write_text("")
    tool.chmod(0o755)
    svc.settings = replace(svc.settings, init_path=str(tool))
    assert svc.init_path_for(HostConfig()) is None
    assert svc.init_path_for(HostConfig(init=True)) == str(tool)
    assert svc.init_path_for(HostConfig(init=True, pid_mode="host")) is None  # as dockerd
    svc.settings = replace(svc.settings, init=True)
    assert svc.init_path_for(HostConfig()) == str(tool)
    assert svc.init_path_for(HostConfig(init=False)) is None
    svc.settings = replace(svc.settings, init_path=str(tmp_path / "missing"))
    with pytest.raises(SystemError_, match="executable file not found"):
        svc.init_path_for(HostConfig(init=True))


async def test_exec_is_refused_while_restarting(svc: ContainerService) -> None:
    from runtime.containers.execs import ExecConfig, ExecService

    execs = ExecService(svc)
    cid = (await svc.create(cfg("sh", "-c", "sleep 0.3; exit 3", host=always()))).id
    waiter = svc.wait(cid, WaitCondition.NEXT_EXIT)
    await svc.start(cid)
    svc.live[cid].restart_delay = 30.0
    exec_id = execs.create(cid, ExecConfig(cmd=("true",)))
    assert (await waiter).exit_code == 3
    with pytest.raises(Conflict, match="is restarting, wait until the container is running"):
        await execs.start(exec_id, detach=True)
    with pytest.raises(Conflict, match="is restarting"):
        execs.create(cid, ExecConfig(cmd=("true",)))


async def test_a_daemon_stopped_during_a_back_off_reloads_it_exited(
        svc: ContainerService, tmp_path: Path) -> None:
    cid = await _restarting(svc)
    task = svc.live[cid].restart_task
    assert task is not None
    task.cancel()  # the first daemon is gone
    again = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                             FakeLayers(tmp_path / "layers"), HostRuntime())
    await again.load()
    state = again.get(cid).state
    assert (state.status, state.exit_code, state.running) == (Status.EXITED, 3, False)


async def test_kill_during_a_policy_start_keeps_the_container_stopped(
        stack: tuple[ContainerService, list[str], FakeSteps]) -> None:
    svc, _, fake = stack
    cid = (await svc.create(cfg("sleep", "30", host=always()))).id
    await svc.start(cid)
    fake.attach_delay = 0.5  # the policy's next start stays in progress a while
    await svc.runtime.signal(svc.get(cid).state.pid, 15)  # exits by itself: restart policy
    for _ in range(200):
        live = svc.live[cid]
        if live.starting and live.restart_task is not None:
            break
        await asyncio.sleep(0.01)
    assert svc.live[cid].starting, "the policy's start was never seen in progress"
    await svc.kill(cid)
    state = svc.get(cid).state
    assert (state.status, state.exit_code) == (Status.EXITED, 137)
    assert svc.live[cid].restart_task is None and not state.restarting


async def test_concurrent_lifecycle_calls_run_one_at_a_time(svc: ContainerService) -> None:
    from runtime.errors import NotModified

    cid = (await svc.create(cfg("sleep", "30"))).id
    await svc.start(cid)
    results = await asyncio.gather(svc.restart(cid, timeout=1), svc.start(cid),
                                   svc.restart(cid, timeout=1), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], NotModified) and results[2] is None
    runtime: HostRuntime = svc.runtime  # type: ignore[assignment]
    assert [p.container_id for p in runtime.procs.values()] == [cid]  # never two inits
    results = await asyncio.gather(svc.remove(cid, force=True), svc.restart(cid, timeout=1),
                                   return_exceptions=True)
    assert results[0] is None and isinstance(results[1], ContainerNotFound)
    assert runtime.procs == {}
