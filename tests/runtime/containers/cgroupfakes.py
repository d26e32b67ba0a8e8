"""A host-process runtime whose processes join the container's real cgroups, for tests of
pause, top, stats and update (v1 or v2 hierarchies of this host)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.containers.service import ContainerService
from runtime.events import EventBus
from runtime.linux.cgroups import CgroupManager
from runtime.process.contract import StartedProcess
from runtime.spec.model import ContainerSpec
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime


class CgroupHostRuntime(HostRuntime):
    async def start(self, spec: ContainerSpec) -> StartedProcess:
        started = await super().start(spec)
        for d in spec.cgroup_dirs:
            (Path(d) / "cgroup.procs").write_text(str(started.pid))
        return started


def remove_parent(manager: CgroupManager) -> None:
    roots = [*manager.hierarchies.values(), *([manager.unified] if manager.unified else [])]
    if manager.version == "2":
        roots = [str(manager.root)]
    for mountpoint in roots:
        parent = Path(mountpoint) / manager.parent
        if parent.exists():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


@pytest.fixture
async def cg_svc(tmp_path: Path) -> AsyncIterator[ContainerService]:
    """A container service with real cgroups under a throw-away parent."""
    manager = CgroupManager(f"pydockerd-test-{uuid.uuid4().hex[:8]}")
    runtime = CgroupHostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               FakeLayers(tmp_path / "layers"), runtime, manager)
    await service.load()
    yield service
    await runtime.kill_all()
    for _ in range(100):
        if not runtime.procs:
            break
        import asyncio
        await asyncio.sleep(0.02)
    remove_parent(manager)
