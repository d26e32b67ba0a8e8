import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.containers.execs import ExecService
from runtime.containers.health import (
    Health, HealthMonitors, ProbeResult, Schedule, apply_result, probe_command, status_of,
)
from runtime.containers.listing import ListOptions, select
from runtime.containers.probes import attach
from runtime.containers.model import Container, ContainerConfig, HealthConfig, HostConfig
from runtime.containers.service import ContainerService, CreateRequest
from runtime.events import EventBus
from runtime.filters import Filters
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime

MS = 1_000_000


def container(test: tuple[str, ...] | None, **hc: int) -> Container:
    config = ContainerConfig(image="busybox", healthcheck=HealthConfig(test=test, **hc))
    c = Container("c" * 64, "/c", 0, "sleep", (), config, HostConfig(), "img", Path("/"))
    c.state.set_running(1, time.time_ns())
    return c


def result(code: int, at_ns: int = 0) -> ProbeResult:
    return ProbeResult(at_ns, at_ns, code, f"out{code}")


def test_probe_command_forms() -> None:
    assert probe_command(container(("CMD", "cat", "/x"))) == ("cat", "/x")
    assert probe_command(container(("CMD-SHELL", "exit 1"))) == ("/bin/sh", "-c", "exit 1")
    assert probe_command(container(("NONE",))) is None
    assert probe_command(container(None)) is None
    assert probe_command(container(("BOGUS", "x"))) is None
    shelled = container(("CMD-SHELL", "x"))
    shelled.config = replace(shelled.config, shell=("/bin/ash", "-e", "-c"))
    assert probe_command(shelled) == ("/bin/ash", "-e", "-c", "x")


def test_schedule_defaults_and_overrides() -> None:
    assert Schedule.of(HealthConfig(test=("CMD", "x"))) == Schedule(30.0, 30.0, 0.0, 5.0, 3)
    s = Schedule.of(HealthConfig(interval=200 * MS, timeout=1000 * MS, retries=2,
                                 start_period=3000 * MS, start_interval=100 * MS))
    assert s == Schedule(0.2, 1.0, 3.0, 0.1, 2)


def test_failures_reach_unhealthy_after_retries_and_success_resets() -> None:
    h, s = Health(), Schedule(1, 1, 0, 1, 2)
    apply_result(h, result(1), s, 0)
    assert (h.status, h.failing_streak) == ("starting", 1)
    apply_result(h, result(1), s, 0)
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    apply_result(h, result(0), s, 0)
    assert (h.status, h.failing_streak) == ("healthy", 0)
    apply_result(h, result(-1), s, 0)
    assert (h.status, h.failing_streak) == ("healthy", 1)  # still healthy below retries


def test_start_period_failures_do_not_count_while_starting() -> None:
    s = Schedule(1, 1, start_period=10, start_interval=1, retries=1)
    h = Health()
    apply_result(h, result(1, at_ns=5_000 * MS), s, started_at_ns=0)
    assert (h.status, h.failing_streak) == ("starting", 0)
    apply_result(h, result(1, at_ns=11_000 * MS), s, started_at_ns=0)
    assert (h.status, h.failing_streak) == ("unhealthy", 1)
    # once healthy, failures in the start period count
    h2 = Health()
    apply_result(h2, result(0, at_ns=MS), s, 0)
    apply_result(h2, result(1, at_ns=2 * MS), s, 0)
    assert (h2.status, h2.failing_streak) == ("unhealthy", 1)


def test_log_keeps_last_five() -> None:
    h, s = Health(), Schedule(1, 1, 0, 1, 3)
    for code in range(7):
        apply_result(h, result(code), s, 0)
    assert [r.exit_code for r in h.log] == [2, 3, 4, 5, 6]


class FakeRunner:
    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.calls: list[float] = []

    async def run(self, c: Container, cmd: tuple[str, ...], timeout: float) -> ProbeResult:
        self.calls.append(time.monotonic())
        code = self.codes.pop(0) if self.codes else 0
        now = time.time_ns()
        return ProbeResult(now, now, code, " ".join(cmd))


async def wait_for(predicate: object, limit: float = 3.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_monitor_publishes_status_changes_once() -> None:
    events: list[str] = []
    runner = FakeRunner([1, 1, 1, 0, 0])
    monitors = HealthMonitors(runner, lambda c, action: events.append(action))
    c = container(("CMD", "probe"), interval=20 * MS, retries=2)
    monitors.container_started(c)
    assert status_of(c) == "starting"
    await wait_for(lambda: not runner.codes and len(runner.calls) >= 6)
    monitors.container_stopped(c)
    assert events == ["health_status: unhealthy", "health_status: healthy"]
    assert c.state.health.log[-1].output == "probe"


async def test_start_interval_used_only_while_starting_in_start_period() -> None:
    runner = FakeRunner([1, 1, 0, 0])
    monitors = HealthMonitors(runner, lambda c, action: None)
    c = container(("CMD", "p"), interval=300 * MS, start_period=5000 * MS,
                  start_interval=10 * MS)
    monitors.container_started(c)
    await wait_for(lambda: len(runner.calls) >= 3)
    assert runner.calls[2] - runner.calls[0] < 0.2  # fast while starting
    await wait_for(lambda: len(runner.calls) >= 4)
    assert runner.calls[3] - runner.calls[2] >= 0.29  # healthy: the normal interval
    monitors.container_stopped(c)


async def test_stop_cancels_and_restart_resets_to_starting() -> None:
    runner = FakeRunner([])
    monitors = HealthMonitors(runner, lambda c, action: None)
    c = container(("CMD", "p"), interval=10 * MS)
    monitors.container_started(c)
    await wait_for(lambda: status_of(c) == "healthy")
    monitors.container_stopped(c)
    count = len(runner.calls)
    await asyncio.sleep(0.05)
    assert len(runner.calls) == count and not monitors.tasks
    assert status_of(c) == "unhealthy"  # an exited container reads unhealthy, as dockerd
    monitors.container_started(c)
    assert status_of(c) == "starting" and c.state.health.log  # the log survives a restart
    monitors.container_stopped(c)


async def test_disabled_healthcheck_has_no_state() -> None:
    monitors = HealthMonitors(FakeRunner([]), lambda c, action: None)
    c = container(("NONE",))
    monitors.container_started(c)
    assert c.state.health is None and status_of(c) == "none" and not monitors.tasks


# --- real execs (host processes through the fake runtime) ------------------------------

@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[ContainerService]:
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime)
    await service.load()
    attach(service, ExecService(service))
    yield service
    await runtime.kill_all()


async def start(svc: ContainerService, test: tuple[str, ...], **hc: int) -> Container:
    config = ContainerConfig(image="busybox", cmd=("sleep", "30"),
                             healthcheck=HealthConfig(test=test, **hc))
    created = await svc.create(CreateRequest(config, HostConfig(), ""))
    await svc.start(created.id)
    return svc.get(created.id)


async def test_real_probe_healthy_with_exec_events_and_filter(svc: ContainerService) -> None:
    c = await start(svc, ("CMD-SHELL", "echo ok"), interval=50 * MS, retries=2)
    await wait_for(lambda: status_of(c) == "healthy")
    actions = [e.action for e in svc.events.history()]
    first = actions.index("health_status: healthy")
    assert actions[first - 3:first] == ["exec_create: /bin/sh -c echo ok",
                                        "exec_start: /bin/sh -c echo ok", "exec_die"]
    assert c.state.health.log[0].output == "ok\n" and c.state.health.log[0].exit_code == 0
    listed = select(svc.store, ListOptions(filters=Filters({"health": ("healthy",)})),
                    svc.get, lambda ref, c: True)
    assert [x.id for x in listed] == [c.id]
    await svc.stop(c.id, timeout=0)
    assert svc.health is not None and c.id not in svc.health.tasks


async def test_real_probe_failure_timeout_and_output_limit(svc: ContainerService) -> None:
    c = await start(svc, ("CMD-SHELL", "head -c 5000 /dev/zero | tr '\\0' x; exit 3"),
                    interval=30 * MS, retries=2)
    await wait_for(lambda: status_of(c) == "unhealthy")
    entry = c.state.health.log[0]
    assert entry.exit_code == 3 and entry.output == "x" * 4096
    assert c.state.health.failing_streak >= 2
    await svc.stop(c.id, timeout=0)

    slow = await start(svc, ("CMD", "sleep", "5"), interval=20 * MS, timeout=200 * MS,
                       retries=1)
    began = time.monotonic()
    await wait_for(lambda: status_of(slow) == "unhealthy")
    assert time.monotonic() - began < 2
    assert slow.state.health.log[0].exit_code == -1
    assert slow.state.health.log[0].output == "Health check exceeded timeout (200ms)"
    await svc.stop(slow.id, timeout=0)


def test_image_healthcheck_merged_per_field() -> None:
    from runtime.containers.imageconfig import merge_image_config
    image = {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 200 * MS, "Retries": 2}}
    partial = ContainerConfig(healthcheck=HealthConfig(timeout=2000 * MS))
    assert merge_image_config(partial, image).healthcheck == HealthConfig(
        test=("CMD", "true"), interval=200 * MS, timeout=2000 * MS, retries=2)
    off = ContainerConfig(healthcheck=HealthConfig(test=("NONE",)))
    assert merge_image_config(off, image).healthcheck == HealthConfig(
        test=("NONE",), interval=200 * MS, retries=2)
    assert merge_image_config(ContainerConfig(), image).healthcheck == HealthConfig(
        test=("CMD", "true"), interval=200 * MS, retries=2)


async def test_monitor_restarts_for_reattached_containers(tmp_path: Path) -> None:
    runtime = HostRuntime()  # a daemon restart: the same runtime lists what still runs
    first = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                             FakeLayers(tmp_path / "layers"), runtime)
    await first.load()
    c = await start(first, ("CMD", "true"), interval=20 * MS)
    second = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                              FakeLayers(tmp_path / "layers"), runtime)
    attach(second, ExecService(second))
    await second.load()
    again = second.get(c.id)
    try:
        await wait_for(lambda: status_of(again) == "healthy")
    finally:
        assert second.health is not None
        second.health.container_stopped(again)
        await runtime.kill_all()
