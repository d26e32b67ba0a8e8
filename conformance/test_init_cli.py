"""``--init``: docker-init (tini) runs as PID 1 with the command as its child, as dockerd."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box
from conformance.daemon import DaemonSettings, PydockerdProcess, free_test_bridge
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def test_init_is_pid_1(box: Box) -> None:
    proc = box.run("--rm", "--init", box.image, "cat", "/proc/1/comm")
    assert (proc.returncode, proc.stdout) == (0, "docker-init\n"), proc.stderr
    proc = box.run("--rm", box.image, "cat", "/proc/1/comm")
    assert (proc.returncode, proc.stdout) == (0, "cat\n"), proc.stderr


def test_init_runs_the_command_as_its_child(box: Box) -> None:
    proc = box.run("--rm", "--init", box.image, "sh", "-c", "cat /proc/1/cmdline; echo; echo $$")
    assert proc.returncode == 0, proc.stderr
    cmdline, pid = proc.stdout.splitlines()
    assert cmdline.rstrip("\0").split("\0") == ["/sbin/docker-init", "--", "sh", "-c",
                                   "cat /proc/1/cmdline; echo; echo $$"]
    assert pid != "1"
    # the binary is mounted read-only
    proc = box.run("--rm", "--init", box.image, "sh", "-c", "echo x > /sbin/docker-init")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr, proc.stderr


def test_init_passes_on_a_signal_death(box: Box) -> None:
    proc = box.run("--init", "--rm", box.image, "sh", "-c", "kill -9 $$")
    assert proc.returncode == 137, (proc.returncode, proc.stderr)


def test_init_in_host_config_and_info(box: Box) -> None:
    name = box.run_d("--init", box.image, "sleep", "300")
    assert box.inspect(name)["HostConfig"]["Init"] is True
    info = json.loads(box.ok("info", "--format", "{{json .}}"))
    assert info["InitBinary"] == "docker-init"
    assert set(info["InitCommit"]) >= {"ID"}


def test_daemon_init_default_and_init_path(engine: Engine, busybox_tar: Path) -> None:
    """Daemon ``--init`` makes it the default (``Init: false`` still opts out) and
    ``--init-path`` names the binary (pydockerd-only: starts a daemon of its own)."""
    if not engine.is_pydockerd:
        pytest.skip("starts a pydockerd of its own")
    tini = shutil.which("tini-static") or shutil.which("docker-init")
    if tini is None:
        pytest.skip("needs a static tini (Debian's tini package)")
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    settings.extra_args = [*settings.extra_args, "--init", "--init-path", tini]
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        client = docker.DockerClient(base_url=daemon.host, version="auto")
        with open(busybox_tar, "rb") as f:
            client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
        assert client.info()["InitBinary"] == tini
        out = client.containers.run("busybox:latest", ["cat", "/proc/1/comm"], remove=True,
                                    network_mode="none")
        assert out == b"docker-init\n"
        out = client.containers.run("busybox:latest", ["cat", "/proc/1/comm"], remove=True,
                                    network_mode="none", init=False)
        assert out == b"cat\n"
        client.close()
    finally:
        daemon.stop()
        daemon.remove_dirs()
