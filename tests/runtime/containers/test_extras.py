"""pause/unpause, top, stats, update and prune on a container service with real cgroups
(host processes joined to them) and, for prune, the plain fake runtime."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from runtime.containers import freeze, prune, stats, top, update
from runtime.containers.model import ContainerConfig, HostConfig, RestartPolicy
from runtime.containers.service import ContainerService, CreateRequest
from runtime.containers.state import WaitCondition
from runtime.errors import Conflict, ContainerNotFound, InvalidParameter, SystemError_
from runtime.filters import Filters
from tests.runtime.containers.cgroupfakes import cg_svc  # noqa: F401 - fixture
from tests.runtime.containers.test_service import svc  # noqa: F401 - fixture

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > {path}; sleep 0.02; done"


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]


async def _running(service: ContainerService, *cmd: str, **kw: object) -> str:
    host = kw.pop("host", HostConfig())
    labels = kw.pop("labels", None)
    result = await service.create(CreateRequest(ContainerConfig(
        image="busybox", cmd=cmd, labels=labels), host))  # type: ignore[arg-type]
    await service.start(result.id)
    return result.id


def _actions(service: ContainerService) -> list[str]:
    return [e.action for e in service.events.history()]


async def test_pause_freezes_the_cgroup_and_unpause_thaws(cg_svc: ContainerService,
                                                          tmp_path: Path) -> None:
    counter = tmp_path / "count"
    cid = await _running(cg_svc, "sh", "-c", COUNTER.format(path=counter))
    await asyncio.sleep(0.2)
    await cg_svc.pause(cid)
    container = cg_svc.get(cid)
    assert container.state.paused and container.state.status == "paused"
    if cg_svc.cgroups.version == "1":  # type: ignore[union-attr]
        assert _proc_state(container.state.pid) == "D"  # v1 freezer: uninterruptible
    else:
        assert cg_svc.cgroups.is_frozen(cg_svc.live[cid].cgroup)  # type: ignore[union-attr]
    saved = (cg_svc.store.directory(cid) / "config.v2.json").read_text()
    assert '"paused": true' in saved.replace('"paused":true', '"paused": true')
    frozen = counter.read_text()
    await asyncio.sleep(0.3)
    assert counter.read_text() == frozen
    with pytest.raises(Conflict, match=f"^Container {cid} is already paused$"):
        await cg_svc.pause(cid)
    await cg_svc.unpause(cid)
    await asyncio.sleep(0.3)
    assert counter.read_text() != frozen
    with pytest.raises(SystemError_, match=f"^Container {cid} is not paused$"):
        await cg_svc.unpause(cid)
    assert _actions(cg_svc)[-2:] == ["pause", "unpause"]


async def test_pause_needs_a_running_container(cg_svc: ContainerService) -> None:
    result = await cg_svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                               HostConfig()))
    with pytest.raises(Conflict, match="is not running"):
        await cg_svc.pause(result.id)
    with pytest.raises(ContainerNotFound):
        await cg_svc.pause("nope")


async def test_stop_of_paused_container_thaws_with_unpause_event(cg_svc: ContainerService) -> None:
    cid = await _running(cg_svc, "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.05; done")
    await asyncio.sleep(0.2)
    await cg_svc.pause(cid)
    started = time.monotonic()
    await cg_svc.stop(cid, timeout=5)
    assert time.monotonic() - started < 3
    state = cg_svc.get(cid).state
    assert (state.exit_code, state.paused, state.running) == (3, False, False)
    tail = [a for a in _actions(cg_svc) if a in ("pause", "kill", "unpause", "die", "stop")]
    assert tail == ["pause", "kill", "unpause", "die", "stop"]


async def test_kill_of_paused_container_thaws_without_unpause_event(
        cg_svc: ContainerService) -> None:
    cid = await _running(cg_svc, "sleep", "300")
    await cg_svc.pause(cid)
    waiter = cg_svc.wait(cid, WaitCondition.NOT_RUNNING)
    await cg_svc.kill(cid)
    status = await asyncio.wait_for(waiter, 10)
    assert status.exit_code == 137 and not cg_svc.get(cid).state.paused
    assert "unpause" not in _actions(cg_svc)


async def test_kill_of_paused_container_whose_cgroup_is_already_gone(
        cg_svc: ContainerService, monkeypatch: pytest.MonkeyPatch) -> None:
    # v2: SIGKILL ends a frozen task at once; the exit may remove the cgroup before the thaw
    cid = await _running(cg_svc, "sleep", "300")
    await cg_svc.pause(cid)
    manager = cg_svc.cgroups
    real_freeze = manager.freeze  # type: ignore[union-attr]

    def freeze_after_removal(handle: object, frozen: bool, timeout: float = 5.0) -> None:
        if not frozen:
            real_freeze(handle, False)  # let the kill take effect on v1 too
            raise FileNotFoundError(2, "No such file or directory", "cgroup.freeze")
        real_freeze(handle, frozen, timeout)

    monkeypatch.setattr(manager, "freeze", freeze_after_removal)
    waiter = cg_svc.wait(cid, WaitCondition.NOT_RUNNING)
    await cg_svc.kill(cid)
    status = await asyncio.wait_for(waiter, 10)
    assert status.exit_code == 137 and not cg_svc.get(cid).state.paused


async def test_other_signals_stay_pending_when_a_stop_signal_is_set(
        cg_svc: ContainerService, tmp_path: Path) -> None:
    marker = tmp_path / "hup"
    result = await cg_svc.create(CreateRequest(ContainerConfig(
        image="busybox", cmd=("sh", "-c", f"trap 'touch {marker}' HUP; "
                              "while true; do sleep 0.05; done"),
        stop_signal="SIGUSR1"), HostConfig()))
    await cg_svc.start(result.id)
    await asyncio.sleep(0.2)
    await cg_svc.pause(result.id)
    await cg_svc.kill(result.id, "HUP")
    await asyncio.sleep(0.3)
    assert cg_svc.get(result.id).state.paused and not marker.exists()
    await cg_svc.unpause(result.id)
    for _ in range(50):
        if marker.exists():
            break
        await asyncio.sleep(0.05)
    assert marker.exists()


async def test_top_lists_the_cgroup_processes(cg_svc: ContainerService) -> None:
    # the fake runtime joins the cgroup just after the spawn: fork only after that
    cid = await _running(cg_svc, "sh", "-c", "sleep 0.1; sleep 301 & sleep 302 & wait")
    await asyncio.sleep(0.3)
    result = await cg_svc.top(cid)
    assert result.titles[1] == "PID" and result.titles[-1] == "CMD"
    commands = sorted(p[-1] for p in result.processes)
    assert any(c.endswith("sleep 301") for c in commands)
    assert any(c.endswith("sleep 302") for c in commands)
    assert not any(str(os.getpid()) == p[1] for p in result.processes)
    custom = await cg_svc.top(cid, "-o pid,comm")
    assert custom.titles == ("PID", "COMMAND")
    with pytest.raises(InvalidParameter, match='specifying "user=PID" is not allowed'):
        await cg_svc.top(cid, "-o user=PID")
    assert _actions(cg_svc)[-1] == "top"


def test_parse_ps_output_rules() -> None:
    out = ("UID PID PPID CMD\nroot 10 1 sleep 1 2 3\nroot 11 1 other\n"
           "root - - thread\nroot 12 1 x\n")
    result = top.parse_ps_output(out, {10, 12})
    assert result.processes == (("root", "10", "1", "sleep 1 2 3"), ("root", "-", "-", "thread"),
                                ("root", "12", "1", "x"))
    with pytest.raises(SystemError_, match="Couldn't find PID field"):
        top.parse_ps_output("A B\n1 2\n", {1})
    with pytest.raises(SystemError_, match="Unexpected pid 'x'"):
        top.parse_ps_output("PID CMD\nx y\n", {1})


async def test_stats_reading_and_two_sample_frame(cg_svc: ContainerService) -> None:
    cid = await _running(cg_svc, "sh", "-c", "while true; do :; done",
                         host=HostConfig(memory=64 << 20, pids_limit=30))
    await asyncio.sleep(0.3)
    frames = [f async for f in await cg_svc.stats(cid, stream=False, one_shot=False)]
    assert len(frames) == 1
    frame = frames[0]
    assert frame.sample is not None and frame.previous is not None
    cur, pre = frame.sample, frame.previous
    assert cur.read_ns - pre.read_ns >= 900_000_000
    assert cur.cpu.total_ns > pre.cpu.total_ns > 0
    assert cur.cpu.system_ns > pre.cpu.system_ns > 0 and cur.cpu.online_cpus >= 1
    # (usage stays near 0: the fake runtime joins the cgroup after the process allocated)
    assert cur.memory.limit == 64 << 20 and "rss" in cur.memory.stats or "anon" in cur.memory.stats
    assert cur.pids_current >= 1 and cur.pids_limit == 30
    assert cur.networks is not None and "lo" not in cur.networks  # host netns here
    one = [f async for f in await cg_svc.stats(cid, stream=False, one_shot=True)]
    assert one[0].sample is not None and one[0].previous is None


async def test_stats_of_a_stopped_container_is_empty(cg_svc: ContainerService) -> None:
    result = await cg_svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                               HostConfig()))
    frames = [f async for f in await cg_svc.stats(result.id, False, False)]
    assert [(f.sample, f.previous) for f in frames] == [(None, None)]
    with pytest.raises(ContainerNotFound):
        await cg_svc.stats("nope", False, False)


def test_stats_parsers() -> None:
    assert stats.system_cpu_ns("cpu  100 0 50 850 0 0 0 7 0 0\ncpu0 1 2\n") == \
        1000 * 1_000_000_000 // stats.CLK_TCK
    entries = stats.parse_v1_blkio("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n")
    assert [(e.op, e.value) for e in entries] == [("Read", 4096), ("Write", 512), ("Total", 4608)]
    nbytes, ios = stats.parse_v2_io("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    assert [(e.op, e.value) for e in nbytes] == [("read", 10), ("write", 20)]
    assert [(e.op, e.value) for e in ios] == [("read", 1), ("write", 2)]
    dev = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed "
           "multicast|bytes packets errs drop fifo colls carrier compressed\n"
           "    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n"
           "  eth0: 100 2 3 4 0 0 0 0 200 5 6 7 0 0 0 0\n")
    assert stats.parse_net_dev(dev) == {"eth0": {
        "rx_bytes": 100, "rx_packets": 2, "rx_errors": 3, "rx_dropped": 4,
        "tx_bytes": 200, "tx_packets": 5, "tx_errors": 6, "tx_dropped": 7}}


async def test_update_live_and_merge_rules(cg_svc: ContainerService) -> None:
    cid = await _running(cg_svc, "sleep", "300", host=HostConfig(memory=64 << 20))
    container = cg_svc.get(cid)
    await cg_svc.update(cid, HostConfig(memory=128 << 20, memory_swap=256 << 20,
                                                nano_cpus=500_000_000, pids_limit=40,
                                                restart_policy=RestartPolicy("always")))
    host = container.host_config
    assert (host.memory, host.memory_swap, host.nano_cpus, host.pids_limit) == (
        128 << 20, 256 << 20, 500_000_000, 40)
    assert host.restart_policy.name == "always"
    manager = cg_svc.cgroups
    handle = freeze.cgroup_handle(cg_svc.ctx, container)
    mem = manager.controller_dir(handle, "memory")  # type: ignore[union-attr]
    pids = manager.controller_dir(handle, "pids")  # type: ignore[union-attr]
    if manager.version == "2":  # type: ignore[union-attr]
        assert (mem / "memory.max").read_text().strip() == str(128 << 20)
    else:
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(128 << 20)
    assert (pids / "pids.max").read_text().strip() == "40"
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs"):
        await cg_svc.update(cid, HostConfig(cpu_quota=20000))
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        await cg_svc.update(cid, HostConfig(memory=1000))
    assert _actions(cg_svc)[-1] == "update"
    # saved with the container
    assert '"memory":134217728' in (cg_svc.store.directory(cid) / "hostconfig.json").read_text()


def test_update_merge_is_dockerds() -> None:
    current = HostConfig(memory=64 << 20, memory_swap=128 << 20, cpu_shares=100)
    with pytest.raises(Conflict, match="Memory limit should be smaller than already set "
                                       "memoryswap limit"):
        update.merge(current, HostConfig(memory=256 << 20), "c")
    merged = update.merge(current, HostConfig(memory=96 << 20), "c")
    assert (merged.memory, merged.memory_swap, merged.cpu_shares) == (96 << 20, 128 << 20, 100)
    assert update.merge(current, HostConfig(pids_limit=-1), "c").pids_limit is None
    with pytest.raises(Conflict, match="AutoRemove"):
        update.merge(HostConfig(auto_remove=True), HostConfig(
            restart_policy=RestartPolicy("always")), "c")
    assert update.merge(current, HostConfig(restart_policy=RestartPolicy("")), "c") \
        .restart_policy == current.restart_policy


async def test_prune_filters(svc: ContainerService) -> None:  # noqa: F811
    async def exited(labels: dict[str, str]) -> str:
        result = await svc.create(CreateRequest(ContainerConfig(
            image="busybox", cmd=("true",), labels=labels), HostConfig()))
        waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
        await svc.start(result.id)
        await asyncio.wait_for(waiter, 10)
        return result.id

    a = await exited({"env": "test"})
    b = await exited({"env": "prod"})
    c = await exited({})
    running = await _running(svc, "sleep", "300", labels={"env": "test"})
    report = await svc.prune(Filters.of({"label": ["env=test"]}))
    assert report.deleted == (a,)
    report = await svc.prune(Filters.of({"label!": ["env=prod"], "until": ["1h"]}))
    assert report.deleted == ()  # all were created less than an hour ago
    report = await svc.prune(Filters.of({"label!": ["env=prod"]}))
    assert report.deleted == (c,)
    assert svc.get(b) and svc.get(running).state.running
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        await svc.prune(Filters.of({"bogus": ["1"]}))
    with pytest.raises(SystemError_, match="more than one until"):
        await svc.prune(Filters.of({"until": ["1h", "2h"]}))
    events = [e for e in svc.events.history() if e.action == "prune"]
    assert events and events[-1].attributes == {"reclaimed": "0"}
    os.kill(svc.get(running).state.pid, signal.SIGKILL)


def test_v2_freezer_writes_cgroup_freeze_and_waits_for_events(tmp_path: Path) -> None:
    from runtime.linux.cgroups import CgroupHandle, CgroupManager

    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    manager = CgroupManager("p", root=str(root))
    box = root / "p" / "c1"
    box.mkdir(parents=True)
    (box / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    handle = CgroupHandle("c1", (str(box),))
    manager.freeze(handle, True)
    assert (box / "cgroup.freeze").read_text() == "1" and manager.is_frozen(handle)
    with pytest.raises(OSError, match="timed out waiting for the cgroup to thaw"):
        manager.freeze(handle, False, timeout=0.05)  # the kernel never reported it
    assert (box / "cgroup.freeze").read_text() == "0"
    assert manager.handle_for("c1") == handle


async def test_commit_pauses_a_running_container_unless_told_not_to(
        cg_svc: ContainerService) -> None:
    from runtime.containers.service import CommitOptions

    cid = await _running(cg_svc, "sleep", "300")
    await cg_svc.commit(cid, CommitOptions(repo="snap"))
    assert [a for a in _actions(cg_svc) if a in ("pause", "commit", "unpause")] == [
        "pause", "commit", "unpause"]
    assert not cg_svc.get(cid).state.paused
    await cg_svc.commit(cid, CommitOptions(repo="snap", pause=False))
    assert _actions(cg_svc)[-1] == "commit"
    assert _actions(cg_svc).count("pause") == 1


async def test_commit_of_a_container_whose_exit_completes_during_the_pause(
        cg_svc: ContainerService, monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-py's RemoveImageTest::test_remove commits a container that is exiting: when
    its exit is fully handled (cgroup released) before the freeze fails, commit goes on
    without the pause instead of a 500."""
    from runtime.containers.service import CommitOptions

    cid = await _running(cg_svc, "sleep", "300")

    async def pause_while_it_exits(ctx: object, ref: str) -> None:
        await cg_svc.kill(ref)  # SIGKILL: returns once the exit is recorded
        assert not cg_svc.get(ref).state.running
        raise SystemError_(f"Cannot pause container {ref}: [Errno 2] No such file or directory")

    monkeypatch.setattr(freeze, "pause", pause_while_it_exits)
    image_id = await cg_svc.commit(cid, CommitOptions(repo="snap"))
    assert image_id
    assert "commit" in _actions(cg_svc) and "unpause" not in _actions(cg_svc)
