"""The image-service adapters on the real layer store and process runtime."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtime.containers.adapters import ImageBackendAdapter, ImageRwLayers
from runtime.containers.attach import AttachOptions
from runtime.containers.model import ContainerConfig, HostConfig
from runtime.containers.service import ContainerService, CreateRequest
from runtime.containers.spec import compose_spec
from runtime.containers.state import WaitCondition
from runtime.events import EventBus
from runtime.images.model import Image
from runtime.images.service import ImageService
from runtime.process.client import SupervisorClient, spawn_supervisor
from tests.runtime.process.conftest import make_busybox_rootfs

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"),
                       reason="needs root and /bin/busybox"),
    pytest.mark.timeout(120),
]

LAYERS = 120
PATH_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


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


def deep_image(images: ImageService, work: Path) -> Image:
    """A busybox base layer with /bottom, then tiny one-file layers up to /top."""
    base = work / "base"
    make_busybox_rootfs(base)
    (base / "bottom").write_text("from the bottom layer\n")
    config = {"Env": PATH_ENV, "Cmd": ["sh"]}
    image = images.commit_sync(None, base, config, None)
    for i in range(1, LAYERS):
        diff = work / f"layer{i}"
        diff.mkdir()
        name = "top" if i == LAYERS - 1 else f"f{i}"
        (diff / name).write_text(f"from layer {i}\n")
        image = images.commit_sync(image, diff, config, "deep:latest" if i == LAYERS - 1 else None)
    return image


@pytest.fixture
async def deep(tmp_path: Path, exec_root: Path) -> AsyncIterator[tuple[ContainerService,
                                                                        ImageService]]:
    images = ImageService(tmp_path / "data", EventBus())
    await asyncio.to_thread(deep_image, images, tmp_path / "src")
    client = await SupervisorClient.connect(exec_root)
    service = ContainerService(tmp_path / "data", EventBus(), ImageBackendAdapter(images),
                               ImageRwLayers(images), client)
    await service.load()
    yield service, images
    for c in service.store:
        await service.remove(c.id, force=True)
    await client.close()


async def test_container_of_an_image_with_120_layers_starts(
        deep: tuple[ContainerService, ImageService]) -> None:
    svc, images = deep
    image = images.get("deep:latest")
    assert len(image.diff_ids) == LAYERS
    result = await svc.create(CreateRequest(
        ContainerConfig(image="deep:latest",
                        cmd=("sh", "-c", "cat /bottom /top /f1; pwd; readlink /proc/self/cwd")),
        HostConfig()))
    container = svc.get(result.id)
    assert container.rw_layer is not None
    absolute = ":".join(container.rw_layer.lowerdirs)
    assert len(absolute) > 4096  # the absolute form could not be mounted
    rootfs = compose_spec(container).rootfs
    # the store's own description of the container's writable layer
    assert rootfs.mount == images.layers.mounts(container.id)
    assert rootfs.mount.chdir == str(images.layers.root)
    assert all(not d.startswith("/") for d in str(rootfs.mount.option("lowerdir")).split(":"))
    att = svc.attach(result.id, AttachOptions(stream=True, stdout=True, stderr=True))
    waiter = svc.wait(result.id, WaitCondition.NEXT_EXIT)
    await svc.start(result.id)
    out = b"".join([data async for _, data in att.output()])
    status = await asyncio.wait_for(waiter, 20)
    assert (status.exit_code, out.decode().splitlines()) == (0, [
        "from the bottom layer", f"from layer {LAYERS - 1}", "from layer 1", "/", "/"])
