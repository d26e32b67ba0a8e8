"""ContainerVolumes: a container's volume mount points at create (volumes-from, -v, --mount,
image VOLUMEs, copy-up), references, mount/unmount around its process, release on
removal (anonymous volumes only with -v), restore after a daemon restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.containers.model import (
    Container, ContainerConfig, HostConfig, MountPoint, MountRequest, RwLayer,
)
from runtime.errors import ContainerNotFound, Conflict, InvalidParameter, NotFound
from runtime.events import EventBus
from runtime.volumes.containers import ContainerVolumes
from runtime.volumes.service import VolumeService


@pytest.fixture
def service(tmp_path: Path) -> VolumeService:
    return VolumeService.open(tmp_path / "data", EventBus())


@pytest.fixture
def cv(service: VolumeService) -> ContainerVolumes:
    return ContainerVolumes(service)


def make(tmp_path: Path, cid: str, host: HostConfig = HostConfig(),
         volumes: tuple[str, ...] | None = None) -> Container:
    upper = tmp_path / cid / "upper"
    upper.mkdir(parents=True)
    (upper / "image" / "data").mkdir(parents=True)
    (upper / "image" / "data" / "seed").write_text("from image")
    return Container(
        id=cid, name="/" + cid, created_ns=1, path="true", args=(),
        config=ContainerConfig(image="img", volumes=volumes), host_config=host,
        image_id="sha256:" + "0" * 64, root=tmp_path / cid,
        rw_layer=RwLayer(str(upper), "", ()),
    )


def by_dest(points: tuple[MountPoint, ...]) -> dict[str, MountPoint]:
    return {p.destination: p for p in points}


def never(ref: str) -> Container:
    raise ContainerNotFound(ref)


async def test_binds_mounts_and_image_volumes(cv: ContainerVolumes, service: VolumeService,
                                              tmp_path: Path) -> None:
    host = HostConfig(binds=("named:/named:ro", "/anon-bind"), mounts=(
        MountRequest(target="/image/data", source="seeded", type="volume"),
        MountRequest(target="/nocopy", source="empty", type="volume",
                     volume_options={"NoCopy": True})))
    c = make(tmp_path, "c1", host, volumes=("/image/data", "/from-image/", "/bound"))
    bind = MountPoint("bind", "/srv", "/bound", "", True, "rprivate")
    points = by_dest(await cv.prepare(c, (bind,), never))
    assert points["/bound"] == bind  # a bind wins over the image VOLUME
    named = points["/named"]
    assert (named.type, named.name, named.mode, named.rw, named.driver) == (
        "volume", "named", "ro", False, "local")
    assert named.source == service.get("named").mountpoint
    assert points["/anon-bind"].mode == "z" and service.get(points["/anon-bind"].name).anonymous
    image_vol = points["/from-image"]
    assert image_vol.mode == "" and service.get(image_vol.name).anonymous
    assert os.listdir(points["/image/data"].source) == ["seed"]  # copy-up
    assert os.listdir(points["/nocopy"].source) == []
    assert set(points) == {"/bound", "/named", "/anon-bind", "/image/data", "/nocopy",
                           "/from-image"}
    for p in points.values():
        if p.type == "volume":
            assert service.references(p.name) == ("c1",)


async def test_duplicates_and_bad_specs_roll_back(cv: ContainerVolumes, service: VolumeService,
                                                  tmp_path: Path) -> None:
    c = make(tmp_path, "c2", HostConfig(binds=("one:/d", "/anon", "two:/d")))
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /d"):
        await cv.prepare(c, (), never)
    assert [v.name for v in service.list()] == ["one"]  # named stays, anonymous removed
    assert not service.is_referenced("one")
    c = make(tmp_path, "c3", HostConfig(binds=("ok:/a", "vol:/x:bogus")))
    with pytest.raises(InvalidParameter, match="invalid mode: bogus"):
        await cv.prepare(c, (), never)
    assert [v.name for v in service.list()] == ["one"]  # parsed before anything is made


async def test_volumes_from_and_removal(cv: ContainerVolumes, service: VolumeService,
                                        tmp_path: Path) -> None:
    src = make(tmp_path, "src", HostConfig(binds=("shared:/shared", "/anon")))
    src.mount_points = await cv.prepare(src, (MountPoint("bind", "/h", "/h", "", True,
                                                         "rprivate"),), never)
    anon = by_dest(src.mount_points)["/anon"].name
    reader = make(tmp_path, "reader", HostConfig(volumes_from=("src:ro",)))
    lookup = {"src": src}.__getitem__
    points = by_dest(await cv.prepare(reader, (), lookup))
    assert points["/shared"].rw is False and points["/shared"].mode == ""
    assert points["/h"].type == "bind" and points["/h"].rw is False
    assert service.references("shared") == ("src", "reader")
    reader.mount_points = tuple(points.values())
    missing = make(tmp_path, "x", HostConfig(volumes_from=("ghost",)))
    with pytest.raises(InvalidParameter, match="No such container: ghost"):
        await cv.prepare(missing, (), never)
    cv.release(reader, remove_anonymous=True)  # anon still used by src: kept
    assert service.get(anon).name == anon
    cv.release(src, remove_anonymous=True)
    with pytest.raises(NotFound):
        service.get(anon)
    assert service.get("shared").name == "shared"  # named: kept
    service.remove("shared")


async def test_mount_unmount_and_restore(cv: ContainerVolumes, service: VolumeService,
                                         tmp_path: Path) -> None:
    c = make(tmp_path, "run", HostConfig(binds=("data:/data",)))
    c.mount_points = await cv.prepare(c, (), never)
    cv.mount(c)
    actions = [e.action for e in service.events.history() if e.type == "volume"]
    assert actions[-1] == "mount"
    cv.unmount(c)
    cv.unmount(c)  # once only
    actions = [e.action for e in service.events.history() if e.type == "volume"]
    assert actions[-2:] == ["mount", "unmount"]
    again = VolumeService.open(tmp_path / "data", EventBus())
    ContainerVolumes(again).restore([c])
    with pytest.raises(Conflict):
        again.remove("data")


async def test_release_without_v_keeps_anonymous(cv: ContainerVolumes, service: VolumeService,
                                                 tmp_path: Path) -> None:
    c = make(tmp_path, "keep", HostConfig(), volumes=("/anon",))
    c.mount_points = await cv.prepare(c, (), never)
    name = c.mount_points[0].name
    cv.release(c)
    assert not service.is_referenced(name) and service.get(name).anonymous
