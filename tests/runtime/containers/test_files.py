"""docker cp / export / diff on real file systems: a stopped container's overlay mounted
privately and detached, a "running" container's root reached through /proc/<pid>/root of a
process in its own mount namespace, and hostile archives against a host marker directory."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import stat
import subprocess
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.archive.errors import ArchiveError
from runtime.containers.files import ContainerFiles, FileNotInContainer
from runtime.containers.fsdiff import Change, Kind, changes
from runtime.containers.model import ContainerConfig, HostConfig, RwLayer
from runtime.containers.rootfs import (
    RootfsAccess, in_container_cgroup, open_running_root, parse_mount_devs,
)
from runtime.containers.service import ContainerService, CreateRequest
from runtime.errors import InvalidParameter, SystemError_
from runtime.events import EventBus
from runtime.linux.cgroups import CgroupManager, Resources
from tests.runtime.containers.cgroupfakes import remove_parent
from tests.runtime.containers.fakes import FakeImages, HostRuntime


class RealLayers:
    """Writable layers on a real lower directory (a tiny image: /etc, /bin/ls, /d)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lower = root / "lower"
        (self.lower / "etc").mkdir(parents=True)
        (self.lower / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
        (self.lower / "bin").mkdir()
        (self.lower / "bin" / "ls").write_text("ls")
        (self.lower / "d").mkdir()
        os.symlink("/etc", self.lower / "d" / "etclink")

    def prepare(self, container_id: str, image: Any) -> RwLayer:
        base = self.root / container_id
        for sub in ("diff", "work", "merged"):
            (base / sub).mkdir(parents=True)
        return RwLayer(str(base / "diff"), str(base / "work"), (str(self.lower),), container_id)

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.root / container_id, ignore_errors=True)

    def size(self, container_id: str) -> int:
        return 0


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[tuple[ContainerService, ContainerFiles]]:
    runtime = HostRuntime()
    service = ContainerService(tmp_path / "data", EventBus(), FakeImages(),
                               RealLayers(tmp_path / "layers"), runtime)
    await service.load()
    yield service, service.files
    await runtime.kill_all()


@pytest.fixture
def marker() -> Iterator[Path]:
    path = Path("/tmp") / f"files-marker-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    (path / "secret").write_text("host")
    yield path
    shutil.rmtree(path)


async def _created(service: ContainerService) -> str:
    result = await service.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                                HostConfig()))
    return result.id


async def _body(data: bytes) -> Any:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _tar(*members: tuple[str, str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                t.addfile(info, io.BytesIO(value.encode()))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = value
                t.addfile(info)
    return buf.getvalue()


def _mounts_mentioning(text: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


async def _names(stream: AsyncIterator[bytes]) -> list[str]:
    data = b"".join([chunk async for chunk in stream])
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.getnames()


async def test_stopped_container_stat_archive_extract(
        files: tuple[ContainerService, ContainerFiles], marker: Path) -> None:
    service, access = files
    cid = await _created(service)
    stat = await access.stat(cid, "/d/etclink")
    assert (stat.name, stat.link_target, stat.mode) == ("etclink", "/etc", (1 << 27) | 0o777)
    with pytest.raises(FileNotInContainer, match=f"Could not find the file /nope in container {cid[:6]}"):
        await access.stat(cid[:6], "/nope")
    await access.extract(cid, "/d/etclink", await _body(_tar(("new", "file", "n"))))
    upper = Path(service.get(cid).rw_layer.upperdir)  # type: ignore[union-attr]
    assert (upper / "etc" / "new").read_text() == "n"  # through the link, into the upper dir
    stat, chunks = await access.archive(cid, "/etc")
    assert stat.name == "etc"
    assert await _names(chunks) == ["etc", "etc/new", "etc/passwd"]
    # hostile members: refused or contained, never outside
    up = "../" * 10 + str(marker).lstrip("/")
    with pytest.raises(ArchiveError, match="is outside of"):
        await access.extract(cid, "/d", await _body(_tar((f"{up}/x", "file", "x"))))
    # at the root, ".." has nowhere to go: the member lands inside the container
    await access.extract(cid, "/", await _body(_tar((f"{up}/x", "file", "x"))))
    assert (upper / str(marker).lstrip("/") / "x").read_text() == "x"
    await access.extract(cid, "/d", await _body(_tar(("r", "sym", "/"),
                                                     (f"r{marker}/y", "file", "y"))))
    assert sorted(os.listdir(marker)) == ["secret"]
    with pytest.raises(InvalidParameter, match="extraction point is not a directory"):
        await access.extract(cid, "/etc/passwd", await _body(_tar(("z", "file", "z"))))
    with pytest.raises(FileNotInContainer):
        await access.extract(cid, "/missing", await _body(_tar(("z", "file", "z"))))
    # the private mount is gone once nobody uses it, and it was never left attached
    assert not access.access.busy(cid)
    assert _mounts_mentioning(upper.parent.name) == []
    actions = [e.action for e in service.events.history()]
    assert actions.count("extract-to-dir") == 3 and "archive-path" in actions


async def test_read_only_rootfs_refuses_extract(
        files: tuple[ContainerService, ContainerFiles]) -> None:
    service, access = files
    result = await service.create(CreateRequest(ContainerConfig(image="busybox", cmd=("true",)),
                                                HostConfig(readonly_rootfs=True)))
    with pytest.raises(InvalidParameter, match="container rootfs is marked read-only"):
        await access.extract(result.id, "/etc", await _body(_tar(("z", "file", "z"))))


async def test_export_and_changes(files: tuple[ContainerService, ContainerFiles]) -> None:
    service, access = files
    cid = await _created(service)
    await access.extract(cid, "/", await _body(_tar(("added/f", "file", "1"))))
    upper = Path(service.get(cid).rw_layer.upperdir)  # type: ignore[union-attr]
    (upper / "bin").mkdir()
    os.mknod(upper / "bin" / "ls", stat.S_IFCHR | 0o600, 0)  # an overlay whiteout: rm /bin/ls
    names = await _names(await access.export(cid))
    assert "added/f" in names and "etc/passwd" in names and "bin/ls" not in names
    assert not any(n.startswith(("/", "./")) for n in names)
    found = await access.changes(cid)
    assert [(c.path, c.kind) for c in found] == [
        ("/added", Kind.ADDED), ("/added/f", Kind.ADDED), ("/bin", Kind.MODIFIED),
        ("/bin/ls", Kind.DELETED)]


def test_changes_rules(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "keep", lower / "opq", upper / "etc", upper / "opq"):
        d.mkdir(parents=True)
    (lower / "etc" / "group").write_text("g")
    (lower / "opq" / "old").write_text("o")
    (upper / "etc" / "hosts").write_text("")  # an init mount point only
    (upper / "etc" / "hostname").write_text("")
    (upper / "opq" / "new").write_text("n")
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    os.utime(upper / "etc", ns=(0, 0))
    assert changes(str(upper), [str(lower)]) == [
        Change("/opq", Kind.DELETED), Change("/opq/new", Kind.ADDED)]
    (upper / "etc" / "group").write_text("changed")
    found = [(c.path, c.kind) for c in changes(str(upper), [str(lower)])]
    assert found[:2] == [("/etc", Kind.MODIFIED), ("/etc/group", Kind.MODIFIED)]


def _cgroup_manager() -> CgroupManager:
    return CgroupManager(f"pydockerd-test-{uuid.uuid4().hex[:8]}")


def test_running_root_is_the_process_root_and_checked(tmp_path: Path) -> None:
    root = tmp_path / "croot"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    (root / "inside").write_text("container file")
    manager = _cgroup_manager()
    cid = uuid.uuid4().hex * 2
    handle = manager.create(cid, Resources())
    proc = subprocess.Popen(["unshare", "--mount", f"--root={root}", "/bin/busybox", "sleep",
                             "30"])
    try:
        for _ in range(100):  # unshare has exec'd into busybox once its root changed
            if os.readlink(f"/proc/{proc.pid}/root") != "/":
                break
            time.sleep(0.02)
        with pytest.raises(SystemError_, match="is not in the cgroup"):
            open_running_root(proc.pid, cid)
        for d in handle.dirs:
            (Path(d) / "cgroup.procs").write_text(str(proc.pid))
        with open_running_root(proc.pid, cid) as opened:
            assert sorted(os.listdir(opened.fd)) == ["bin", "inside"]
            assert opened.running
    finally:
        proc.kill()
        proc.wait()
        time.sleep(0.05)
        manager.remove(handle)
        remove_parent(manager)


def test_mount_parsing_helpers() -> None:
    info = ("22 1 0:21 / /proc rw - proc proc rw\n"
            "23 1 0:22 / /dev rw - tmpfs tmpfs rw\n"
            "24 1 8:1 / /data rw - ext4 /dev/sda1 rw\n")
    pseudo, tmpfs = parse_mount_devs(info)
    assert pseudo == {os.makedev(0, 21)} and tmpfs == {os.makedev(0, 22)}
    assert in_container_cgroup("12:pids:/pydockerd/abc\n0::/x\n", "abc")
    assert not in_container_cgroup("12:pids:/pydockerd/abcd\n", "abc")
    assert in_container_cgroup("0::/system.slice/docker-abc.scope\n", "abc")  # systemd driver
    assert not in_container_cgroup("0::/system.slice/docker-abcd.scope\n", "abc")


async def test_shared_detached_mount_is_refcounted(
        files: tuple[ContainerService, ContainerFiles]) -> None:
    service, _ = files
    cid = await _created(service)
    access = RootfsAccess()
    container = service.get(cid)
    first = await asyncio.to_thread(access.open, container)
    second = await asyncio.to_thread(access.open, container)
    assert access.busy(cid)
    assert os.fstat(first.fd).st_dev == os.fstat(second.fd).st_dev  # one overlay mount
    first.close()
    assert access.busy(cid)
    second.close()
    second.close()  # idempotent
    assert not access.busy(cid)


async def test_start_waits_while_the_stopped_root_is_open(
        files: tuple[ContainerService, ContainerFiles]) -> None:
    service, _ = files
    result = await service.create(CreateRequest(ContainerConfig(image="busybox",
                                                                cmd=("sleep", "30")), HostConfig()))
    opened = await asyncio.to_thread(service.rootfs.open, service.get(result.id))
    starting = asyncio.ensure_future(service.start(result.id))
    await asyncio.sleep(0.3)
    assert not starting.done() and not service.get(result.id).state.running
    opened.close()
    await asyncio.wait_for(starting, 5)
    assert service.get(result.id).state.running
    await service.kill(result.id)


async def test_stopped_container_shows_its_binds(
        files: tuple[ContainerService, ContainerFiles], tmp_path: Path) -> None:
    service, access = files
    data, ro = tmp_path / "bind-data", tmp_path / "bind-ro"
    data.mkdir()
    ro.mkdir()
    (ro / "r").write_text("read only")
    result = await service.create(CreateRequest(
        ContainerConfig(image="busybox", cmd=("true",)),
        HostConfig(binds=(f"{data}:/data", f"{ro}:/srv/ro:ro"))))
    await access.extract(result.id, "/data", await _body(_tar(("seed", "file", "seeded"))))
    assert (data / "seed").read_text() == "seeded"
    with pytest.raises(InvalidParameter, match="mounted volume is marked read-only"):
        await access.extract(result.id, "/srv/ro", await _body(_tar(("x", "file", "x"))))
    _stat, chunks = await access.archive(result.id, "/srv/ro/r")
    assert await _names(chunks) == ["r"]
    names = await _names(await access.export(result.id))
    assert "data" in names and "data/seed" not in names  # export leaves volumes out
    assert _mounts_mentioning(str(data)) == [] and _mounts_mentioning(result.id) == []


async def test_copy_uid_gid_uses_the_container_user(
        files: tuple[ContainerService, ContainerFiles]) -> None:
    service, access = files
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind in (("dir", tarfile.DIRTYPE), ("dir/f", tarfile.REGTYPE),
                           ("link", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid, info.linkname = kind, 555, 556, "/etc/passwd"
            t.addfile(info, io.BytesIO(b""))
    plain = await _created(service)
    await access.extract(plain, "/", await _body(buf.getvalue()), copy_uid_gid=True)
    upper = Path(service.get(plain).rw_layer.upperdir)  # type: ignore[union-attr]
    assert (os.lstat(upper / "dir" / "f").st_uid, os.lstat(upper / "dir" / "f").st_gid) == (555, 556)
    result = await service.create(CreateRequest(
        ContainerConfig(image="busybox", cmd=("true",), user="1234:4321"), HostConfig()))
    await access.extract(result.id, "/", await _body(buf.getvalue()), copy_uid_gid=True)
    upper = Path(service.get(result.id).rw_layer.upperdir)  # type: ignore[union-attr]
    for name in ("dir", "dir/f", "link"):
        st = os.lstat(upper / name)
        assert (st.st_uid, st.st_gid) == (1234, 4321), name
    assert os.stat("/etc/passwd").st_uid == 0  # the link itself was changed, not its target
