"""The container service on the real process runtime: namespaces, overlay rootfs, cgroups."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.containers.attach import AttachOptions
from runtime.containers.execs import ExecConfig, ExecService
from runtime.containers.model import ContainerConfig, HostConfig, RwLayer
from runtime.containers.service import ContainerService, CreateRequest, LogsOptions
from runtime.containers.state import WaitCondition
from runtime.events import EventBus
from runtime.linux.cgroups import CgroupManager
from runtime.process.client import SupervisorClient, spawn_supervisor
from runtime.process.contract import StartFailed
from tests.runtime.containers.fakes import FakeImages
from tests.runtime.process.conftest import make_busybox_rootfs

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                       reason="needs root and /bin/busybox"),
    pytest.mark.timeout(60),
]


class DirLayers:
    def __init__(self, root: Path, lower: Path) -> None:
        self.root, self.lower = root, lower

    def prepare(self, container_id: str, image: Any) -> RwLayer:
        base = self.root / container_id
        (base / "diff").mkdir(parents=True)
        (base / "work").mkdir()
        return RwLayer(str(base / "diff"), str(base / "work"), (str(self.lower),), container_id)

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.root / container_id, ignore_errors=True)

    def size(self, container_id: str) -> int:
        return 0


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bb") / "rootfs"
    make_busybox_rootfs(root)
    return root


@pytest.fixture(scope="module")
def exec_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("exec") / "root"
    proc, ready = spawn_supervisor(root)
    try:
        assert os.read(ready, 1) == b"1", (root / "supervisor.log").read_text()
    finally:
        os.close(ready)
    yield root
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def svc(tmp_path: Path, rootfs: Path, exec_root: Path) -> AsyncIterator[ContainerService]:
    client = await SupervisorClient.connect(exec_root)
    cgroups = CgroupManager(parent=f"pydockerd-test-{uuid.uuid4().hex[:8]}")
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               DirLayers(tmp_path / "layers", rootfs), client, cgroups)
    await service.load()
    yield service
    for c in service.store:
        if c.state.running:
            await service.remove(c.id, force=True)
    await client.close()
    mounts = [str(cgroups.root)] if str(cgroups.version) == "2" else [
        *cgroups.hierarchies.values(), *([cgroups.unified] if cgroups.unified else [])]
    for mountpoint in mounts:
        try:
            os.rmdir(Path(mountpoint) / cgroups.parent)
        except OSError:
            pass


async def run(svc: ContainerService, *cmd: str, host: HostConfig | None = None,
              **config: Any) -> tuple[int, bytes, bytes]:
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=cmd, **config),
                                            host or HostConfig()))
    att = svc.attach(result.id, AttachOptions(stream=True, stdout=True, stderr=True))
    waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
    await svc.start(result.id)
    out, err = b"", b""
    async for stream, data in att.output():
        if stream == "stdout":
            out += data
        else:
            err += data
    status = await asyncio.wait_for(waiter, 20)
    return status.exit_code, out, err


async def test_echo_hello_and_exit_codes(svc: ContainerService) -> None:
    assert await run(svc, "echo", "hello") == (0, b"hello\n", b"")
    code, out, err = await run(svc, "sh", "-c", "echo $$; echo e >&2; exit 3")
    assert (code, out, err) == (3, b"1\n", b"e\n")


async def test_missing_executable(svc: ContainerService) -> None:
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("/no/such",)),
                                            HostConfig()))
    with pytest.raises(StartFailed) as exc:
        await svc.start(result.id)
    assert 'exec: "/no/such": stat /no/such: no such file or directory' in str(exc.value)
    assert svc.get(result.id).state.exit_code == 127


async def test_default_caps_and_hostname_and_files(svc: ContainerService) -> None:
    code, out, _ = await run(svc, "sh", "-c", "grep CapEff /proc/self/status; hostname; cat /etc/hostname")
    lines = out.decode().split()
    assert lines[1] == "00000000a80425fb"
    assert lines[2] == lines[3] and len(lines[2]) == 12
    code, out, _ = await run(svc, "grep", "CapEff", "/proc/self/status",
                             host=HostConfig(cap_drop=("ALL",)))
    assert out.split()[1] == b"0000000000000000"


async def test_logs_written_by_real_container(svc: ContainerService) -> None:
    result = await svc.create(CreateRequest(
        ContainerConfig(image="busybox", cmd=("sh", "-c", "echo one; echo two >&2")), HostConfig()))
    waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
    await svc.start(result.id)
    await asyncio.wait_for(waiter, 20)
    stream = svc.logs(result.id, LogsOptions(stdout=True, stderr=True))
    assert sorted([(m.stream, m.line) async for m in stream.messages()]) == [
        ("stderr", b"two\n"), ("stdout", b"one\n")]
    raw = svc.get(result.id).log_path.read_text()
    assert '"log":"one\\n","stream":"stdout","time":"' in raw


async def test_stop_runs_term_trap_and_kill_is_137(svc: ContainerService) -> None:
    result = await svc.create(CreateRequest(ContainerConfig(
        image="busybox", cmd=("sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")),
        HostConfig()))
    await svc.start(result.id)
    await asyncio.sleep(0.3)
    await svc.stop(result.id, timeout=5)
    assert svc.get(result.id).state.exit_code == 0
    result2 = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("sleep", "100")),
                                             HostConfig()))
    await svc.start(result2.id)
    waiter = svc.wait(result2.id, WaitCondition.NOT_RUNNING)
    await svc.kill(result2.id)
    assert (await asyncio.wait_for(waiter, 10)).exit_code == 137


async def test_exec_in_running_container(svc: ContainerService) -> None:
    execs = ExecService(svc)
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("sleep", "100")),
                                            HostConfig()))
    await svc.start(result.id)
    exec_id = execs.create(result.id, ExecConfig(cmd=("sh", "-c", "cat; echo $$; exit 5"),
                                                 attach_stdin=True, attach_stdout=True,
                                                 user="65534", working_dir="/tmp"))
    att = await execs.start(exec_id)
    assert att is not None
    await att.send(b"in\n")
    await att.send_eof()
    out = b"".join([d async for _, d in att.output()])
    lines = out.split()
    assert lines[0] == b"in" and int(lines[1]) > 1
    record = execs.get(exec_id)
    await asyncio.wait_for(record.done.wait(), 10)
    assert record.exit_code == 5


async def test_oom_killed(svc: ContainerService) -> None:
    result = await svc.create(CreateRequest(
        ContainerConfig(image="busybox", cmd=("tail", "/dev/zero")),
        HostConfig(memory=32 << 20, memory_swap=32 << 20)))
    waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
    await svc.start(result.id)
    assert (await asyncio.wait_for(waiter, 30)).exit_code == 137
    c = svc.get(result.id)
    assert c.state.oom_killed
    assert [e.action for e in svc.events.history()][-2:] == ["oom", "die"]


async def test_auto_remove_real(svc: ContainerService) -> None:
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                            HostConfig(auto_remove=True)))
    removed = svc.wait(result.id, WaitCondition.REMOVED)
    await svc.start(result.id)
    assert (await asyncio.wait_for(removed, 20)).exit_code == 0
    assert svc.store.find(result.id) is None
