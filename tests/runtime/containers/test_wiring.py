"""The container service on the real image service, layer store and process runtime."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.config import DaemonConfig
from runtime.containers.service import CommitOptions, ContainerService, CreateRequest
from runtime.containers.model import ContainerConfig, HostConfig
from runtime.containers.state import WaitCondition
from runtime.engine import open_container_services
from runtime.errors import Conflict, ImageNotFound
from runtime.events import EventBus
from runtime.images.service import ImageService
from runtime.linux.cgroups import CgroupManager
from runtime.process.client import SupervisorClient
from tests.runtime.containers.test_real_runtime import exec_root, rootfs  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                       reason="needs root and /bin/busybox"),
    pytest.mark.timeout(60),
]


def rootfs_tar(root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(root.rglob("*")):
            tar.add(entry, arcname=str(entry.relative_to(root)), recursive=False)
    return buf.getvalue()


@pytest.fixture
async def wired(tmp_path: Path, rootfs: Path, exec_root: Path  # noqa: F811
                ) -> AsyncIterator[tuple[ContainerService, ImageService]]:
    events = EventBus()
    config = DaemonConfig(data_root=tmp_path / "data", exec_root=exec_root)
    images = ImageService(config.data_root, events)
    await images.import_image(io.BytesIO(rootfs_tar(rootfs)), "busybox", "latest",
                              config={"Cmd": ["sh"]})
    client = await SupervisorClient.connect(exec_root)
    cgroups = CgroupManager(parent=f"pydockerd-test-{uuid.uuid4().hex[:8]}")
    containers, _ = await open_container_services(config, events, images, client, cgroups)
    yield containers, images
    for c in containers.store:
        await containers.remove(c.id, force=True)
    await client.close()
    mounts = [str(cgroups.root)] if str(cgroups.version) == "2" else list(cgroups.hierarchies.values())
    for mountpoint in mounts:
        try:
            os.rmdir(Path(mountpoint) / cgroups.parent)
        except OSError:
            pass


async def test_run_commit_run_and_rmi_conflict(wired: tuple[ContainerService, ImageService]) -> None:
    svc, images = wired
    with pytest.raises(ImageNotFound, match="No such image: nosuch:latest"):
        await svc.create(CreateRequest(ContainerConfig(image="nosuch"), HostConfig()))
    first = await svc.create(CreateRequest(
        ContainerConfig(image="busybox", cmd=("sh", "-c", "echo layered > /marker")), HostConfig()))
    assert svc.get(first.id).path == "sh"
    waiter = svc.wait(first.id, WaitCondition.NEXT_EXIT)
    await svc.start(first.id)
    assert (await asyncio.wait_for(waiter, 20)).exit_code == 0
    image_id = await svc.commit(first.id, CommitOptions(repo="docker.io/library/committed",
                                                        tag="v1", config=ContainerConfig(cmd=("cat", "/marker"))))
    assert images.get("committed:v1").id == image_id
    second = await svc.create(CreateRequest(ContainerConfig(image="committed:v1"), HostConfig()))
    att = svc.attach(second.id, __import__("runtime.containers.attach", fromlist=["AttachOptions"])
                     .AttachOptions(stream=True, stdout=True, stderr=True))
    await svc.start(second.id)
    out = b"".join([d async for _, d in att.output()])
    assert out == b"layered\n"
    with pytest.raises(Conflict):
        await images.delete("committed:v1")
