"""dockerd's cgroup namespace default: private on cgroup v2, host on v1, or the daemon's
--default-cgroupns-mode (set by the wiring); an explicit HostConfig.CgroupnsMode wins."""

from __future__ import annotations

from pathlib import Path

from runtime.containers.model import ContainerConfig, HostConfig
from runtime.containers.service import ContainerService, CreateRequest
from runtime.events import EventBus
from tests.runtime.containers.fakes import FakeImages, FakeLayers, HostRuntime


class Version:
    def __init__(self, version: str) -> None:
        self.version = version


def service(tmp_path: Path, version: str) -> ContainerService:
    return ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                            FakeLayers(tmp_path / "layers"), HostRuntime(),
                            Version(version))  # type: ignore[arg-type]


async def created_mode(svc: ContainerService, mode: str = "") -> str:
    await svc.load()
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                            HostConfig(cgroupns_mode=mode)))
    return svc.get(result.id).host_config.cgroupns_mode


async def test_private_on_v2_host_on_v1(tmp_path: Path) -> None:
    assert await created_mode(service(tmp_path / "a", "2")) == "private"
    assert await created_mode(service(tmp_path / "b", "1")) == "host"
    assert await created_mode(service(tmp_path / "c", "2"), "host") == "host"
    assert await created_mode(service(tmp_path / "d", "1"), "private") == "private"



class RecordingCgroups:
    """A cgroup backend that records the order of create / started / remove."""

    version = "1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def create(self, container_id: str, resources: object, parent: str = "") -> str:
        self.calls.append(("create", parent))
        return container_id

    def started(self, handle: str) -> None:
        self.calls.append(("started", handle))

    def remove(self, handle: str) -> None:
        self.calls.append(("remove", handle))

    def oom_killed(self, handle: str) -> bool:
        return False


async def test_cgroup_created_under_the_parent_then_released_once_started(
        tmp_path: Path) -> None:
    cgroups = RecordingCgroups()
    svc = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                           FakeLayers(tmp_path / "layers"), HostRuntime(),
                           cgroups)  # type: ignore[arg-type]
    await svc.load()
    result = await svc.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                            HostConfig(cgroup_parent="/mine")))
    await svc.start(result.id)
    assert cgroups.calls[:2] == [("create", "/mine"), ("started", result.id)]
