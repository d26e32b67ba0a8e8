"""No process outlives its container's record: ``docker rm -f`` kills whatever is still in
the container's cgroup, even a process the engine never recorded (what a daemon killed in
the middle of a start leaves), and removes the cgroup; a re-adopted container's cgroup goes
with it too."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import time

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.daemon import PydockerdProcess, own_pydockerd
from conformance.conftest import Engine
from conformance.tracker import ResourceTracker
from runtime.linux.cgroups import CgroupManager, Resources

pytestmark = pytest.mark.timeout(60)


def test_rm_force_kills_an_unrecorded_process_in_the_container_cgroup(
    engine: Engine, docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str
) -> None:
    if not engine.is_pydockerd:
        pytest.skip("plants a process in pydockerd's cgroup layout")
    if "systemd" in docker_cli.ok("info", "--format", "{{.CgroupDriver}}"):
        pytest.skip("the planted cgroup follows the cgroupfs driver's layout")
    name = tracker.container(f"orphan-{os.urandom(4).hex()}")
    cid = docker_cli.ok("create", "--network", "none", "--name", name, busybox_image, "true").strip()
    manager = CgroupManager()
    handle = manager.create(cid, Resources())
    orphan = subprocess.Popen(["sleep", "300"])
    try:
        for directory in handle.dirs:
            with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                f.write(str(orphan.pid))
        assert manager.pids(handle) == [orphan.pid]
        docker_cli.ok("rm", "-f", name)
        deadline = time.monotonic() + 5
        while orphan.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.poll() == -9, "the process in the container's cgroup survived rm -f"
        assert not any(os.path.exists(d) for d in handle.dirs), "the container's cgroup stayed"
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()
        manager.remove(handle)


def test_daemon_start_kills_what_a_start_left_unrecorded(engine: Engine, busybox_tar: Path) -> None:
    """A daemon killed between starting a container's process and recording it: the next
    start finds the process in the cgroup of a container that is not running, and kills it."""
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to kill")
    with own_pydockerd("pydto", 185) as daemon:
        _restart_kills_the_planted_process(daemon, busybox_tar)


def _restart_kills_the_planted_process(daemon: PydockerdProcess, busybox_tar: Path) -> None:
    orphan = subprocess.Popen(["sleep", "300"])
    manager = CgroupManager()
    handle = None
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        if api.info().get("CgroupDriver") == "systemd":
            pytest.skip("the planted cgroup follows the cgroupfs driver's layout")
        api.import_image_from_data(busybox_tar.read_bytes(), repository="busybox", tag="latest",
                                   changes=['CMD ["sh"]'])
        cid = api.create_container("busybox:latest", ["true"], host_config=api.create_host_config(network_mode="none"))["Id"]
        handle = manager.create(cid, Resources())
        for directory in handle.dirs:
            with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                f.write(str(orphan.pid))
        assert daemon.proc is not None
        daemon.proc.kill()
        daemon.proc.wait()
        daemon.start()
        deadline = time.monotonic() + 5
        while orphan.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.poll() == -9, "the unrecorded process survived the daemon's start"
        api = docker.APIClient(base_url=daemon.host, version="auto")
        assert api.inspect_container(cid)["State"]["Status"] == "created"
        api.remove_container(cid)
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()
        if handle is not None:
            manager.remove(handle)
