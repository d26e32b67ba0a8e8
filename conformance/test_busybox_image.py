"""The busybox test image: the rootfs tar itself, and its import into the engine."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from conformance.cli import DockerCLI
from conformance.images import FIXED_MTIME, busybox_applets, busybox_rootfs_tar, find_busybox


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def test_rootfs_is_deterministic(busybox_tar: Path) -> None:
    assert busybox_rootfs_tar() == busybox_tar.read_bytes()


def test_rootfs_layout(busybox_tar: Path) -> None:
    data = busybox_tar.read_bytes()
    members = _members(data)
    names = [m.name.rstrip("/") for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers()]
    assert names == sorted(names)
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    assert members["bin/busybox"].size == find_busybox().stat().st_size
    for applet in busybox_applets(find_busybox()):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    assert "bin/sh" in members
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    for d in ("proc", "sys", "dev", "root", "etc"):
        assert members[d].isdir(), d
    assert all(m.mtime == FIXED_MTIME and m.uid == 0 and m.gid == 0 for m in members.values())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        group = tar.extractfile("etc/group").read().decode()  # type: ignore[union-attr]
    assert passwd.startswith("root:x:0:0:") and "\nnobody:x:65534:65534:" in passwd
    assert group.startswith("root:x:0:") and "\nnobody:x:65534:" in group


def test_busybox_image_imported(busybox_image: str, docker_cli: DockerCLI) -> None:
    inspect = json.loads(docker_cli.ok("image", "inspect", busybox_image))
    assert len(inspect) == 1
    image = inspect[0]
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Os"] == "linux"
    assert f"{busybox_image}" in image["RepoTags"]
    assert len(image["RootFS"]["Layers"]) == 1
