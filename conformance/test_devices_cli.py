"""Device access as the devices cgroup (v1) or the eBPF device program (v2) enforces it:
the default allow-list, ``--device`` and ``--device-cgroup-rule``. CAP_MKNOD lets a
container's root create any node; opening one outside the rules is EPERM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _root_disk() -> tuple[int, int]:
    """major:minor of the block device holding this host's root filesystem (a probe that
    stays meaningful in the VM guest, where it is the virtio disk)."""
    dev = os.stat("/").st_dev
    return os.major(dev), os.minor(dev)


def test_host_disk_and_kmsg_probes_are_denied(box: Box) -> None:
    major, minor = _root_disk()
    disk = box.run("--rm", box.image, "sh", "-c",
                   f"mknod /tmp/d b {major} {minor} && head -c 1080 /tmp/d >/dev/null")
    assert disk.returncode == 1 and "Operation not permitted" in disk.stderr, disk.stderr
    kmsg = box.run("--rm", box.image, "sh", "-c", "mknod /tmp/k c 1 11 && : > /tmp/k")
    assert kmsg.returncode != 0 and "Operation not permitted" in kmsg.stderr, kmsg.stderr


def test_device_mapping_is_usable(box: Box) -> None:
    proc = box.run("--rm", "--device", "/dev/null:/dev/xnull", box.image, "sh", "-c",
                   "echo x > /dev/xnull && head -c1 /dev/xnull && stat -c '%t:%T' /dev/xnull")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1:3"


@pytest.mark.skipif(not Path("/dev/loop0").exists(), reason="no loop devices on this host")
def test_device_cgroup_rule_opens_a_hole(box: Box) -> None:
    probe = "mknod /tmp/l b 7 0 && exec 3</tmp/l && echo opened"
    denied = box.run("--rm", box.image, "sh", "-c", probe)
    assert "Operation not permitted" in denied.stderr, denied
    allowed = box.run("--rm", "--device-cgroup-rule", "b 7:* rmw", box.image, "sh", "-c", probe)
    assert "Operation not permitted" not in allowed.stderr, allowed.stderr
    assert allowed.stdout.strip() == "opened"


def _host_openable_block_device() -> tuple[int, int] | None:
    """A block device this host's root may open (sandboxes refuse some), outside the
    default allow-list: the root disk, else loop0."""
    for path in ("/dev/loop0",):
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            continue
        rdev = os.stat(path).st_rdev
        return os.major(rdev), os.minor(rdev)
    major, minor = _root_disk()
    return None if major == 0 else (major, minor)


def test_privileged_allows_every_device(box: Box, engine: Engine) -> None:
    device = _host_openable_block_device()
    if device is None:
        pytest.skip("no block device this host's root may open")
    probe = f"mknod /tmp/d b {device[0]} {device[1]} && exec 3</tmp/d && echo opened"
    proc = box.run("--rm", "--privileged", box.image, "sh", "-c", probe)
    if not engine.is_pydockerd and "unable to apply caps" in proc.stderr:
        pytest.skip("the reference engine's runc cannot start privileged containers here")
    assert proc.returncode == 0 and proc.stdout.strip() == "opened", proc.stderr
    denied = box.run("--rm", box.image, "sh", "-c", probe)
    assert "Operation not permitted" in denied.stderr, denied.stderr


def test_malformed_device_cgroup_rule_fails_the_start(
        raw: RawHTTP, tracker: ResourceTracker, busybox_image: str) -> None:
    created = raw.post("/containers/create", json_body={
        "Image": busybox_image, "Cmd": ["true"],
        "HostConfig": {"DeviceCgroupRules": ["x 1:3 r"]}})
    assert created.status == 201, created.describe()
    ident = tracker.container(created.json()["Id"])
    started = raw.post(f"/containers/{ident}/start")
    assert started.status == 500, started.describe()
    assert started.error_message() == "invalid device cgroup rule format: 'x 1:3 r'"
