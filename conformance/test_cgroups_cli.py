"""Where a container's cgroup is and what it sees of it: the default cgroup namespace
(dockerd: private on cgroup v2, host on v1), ``--cgroupns`` and ``--cgroup-parent``
placement (cgroupfs driver: an absolute parent from the hierarchy's root, a relative one
below the daemon's own cgroup). Engines report their cgroup version in /info."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def info(raw: RawHTTP) -> dict[str, str]:
    body = raw.get("/info").json()
    return {"version": str(body["CgroupVersion"]), "driver": str(body["CgroupDriver"])}


def _own_lines(box: Box, *flags: str) -> tuple[str, list[str]]:
    """(container id, its /proc/self/cgroup lines) for a short-lived container."""
    name = box.name()
    proc = box.cli("run", "--name", name, "--network", "none", *flags, box.image,
                   "cat", "/proc/self/cgroup")
    assert proc.returncode == 0, proc.stderr
    ident = box.cli("inspect", "-f", "{{.Id}}", name).stdout.strip()
    return ident, proc.stdout.splitlines()


def _line(lines: list[str], version: str) -> str:
    """The memory controller's line on v1, the unified line on v2."""
    if version == "2":
        return next(line for line in lines if line.startswith("0::"))
    return next(line for line in lines if line.split(":")[1].split(",").count("memory"))


def test_default_cgroup_namespace(box: Box, info: dict[str, str]) -> None:
    ident, lines = _own_lines(box)
    mode = box.cli("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", ident).stdout.strip()
    if info["version"] == "2":
        assert mode == "private"
        assert lines == ["0::/"]
    else:
        assert mode == "host"
        assert _line(lines, "1").endswith("/" + ident), lines


def test_explicit_cgroupns_modes(box: Box, info: dict[str, str]) -> None:
    _ident, private = _own_lines(box, "--cgroupns", "private")
    assert _line(private, info["version"]).endswith(":/"), private
    ident, host = _own_lines(box, "--cgroupns", "host")
    # cgroupfs: .../<id>; systemd driver: .../docker-<id>.scope
    assert ident in _line(host, info["version"]).rpartition("/")[2], host


def _cleanup_parent(box: Box, docker_host: str, name: str) -> None:
    """Remove the containers, then the empty parent cgroups the engine left behind (dockerd
    leaves them too), wherever in this host's hierarchies they are."""
    box.tracker.cleanup()
    if not docker_host.startswith("unix://") or os.geteuid() != 0:
        return
    for top, dirs, _files in os.walk("/sys/fs/cgroup"):
        if top.count("/") > 8:
            dirs[:] = []
        elif name in dirs:
            dirs.remove(name)
            try:
                os.rmdir(os.path.join(top, name))
            except OSError:
                pass


def test_absolute_cgroup_parent(box: Box, info: dict[str, str], docker_host: str) -> None:
    if info["driver"] != "cgroupfs":
        pytest.skip("cgroupfs placement; the systemd driver takes slice names")
    parent = f"pydt-cgp-{uuid.uuid4().hex[:8]}"
    try:
        ident, lines = _own_lines(box, "--cgroupns", "host", "--cgroup-parent", "/" + parent)
        assert _line(lines, info["version"]).split(":", 2)[2] == f"/{parent}/{ident}", lines
    finally:
        _cleanup_parent(box, docker_host, parent)


def test_relative_cgroup_parent_is_below_the_daemon(
        box: Box, info: dict[str, str], docker_host: str) -> None:
    if info["driver"] != "cgroupfs":
        pytest.skip("cgroupfs placement; the systemd driver takes slice names")
    if info["version"] == "2":
        pytest.skip("cgroup v2: below a daemon cgroup that holds processes the kernel refuses "
                    "the join (EOPNOTSUPP); pydockerd does not handle that case yet")
    parent = f"pydt-cgr-{uuid.uuid4().hex[:8]}"
    try:
        ident, lines = _own_lines(box, "--cgroupns", "host", "--cgroup-parent", parent)
        assert _line(lines, info["version"]).endswith(f"/{parent}/{ident}"), lines
    finally:
        _cleanup_parent(box, docker_host, parent)


# --- the systemd driver ----------------------------------------------------------------------


@pytest.fixture
def systemd_driver(info: dict[str, str], docker_host: str) -> None:
    if info["driver"] != "systemd":
        pytest.skip("the engine does not use the systemd cgroup driver")
    if not docker_host.startswith("unix://") or os.geteuid() != 0:
        pytest.skip("looks at this host's systemd")


def test_systemd_scope_per_container(box: Box, systemd_driver: None) -> None:
    name = box.run_d(box.image, "sleep", "60")
    ident = box.cli("inspect", "-f", "{{.Id}}", name).stdout.strip()
    pid = box.cli("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    scope = f"docker-{ident}.scope"
    assert Path(f"/proc/{pid}/cgroup").read_text().strip() == f"0::/system.slice/{scope}"
    status = subprocess.run(["systemctl", "status", "--no-pager", pid], capture_output=True,
                            text=True, timeout=30)
    assert scope in status.stdout, status.stdout + status.stderr
    delegate = subprocess.run(["systemctl", "show", "-p", "Delegate", "--value", scope],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    assert delegate == "yes"
    box.cli("rm", "-f", name)
    state = subprocess.run(["systemctl", "show", "-p", "LoadState", "--value", scope],
                           capture_output=True, text=True, timeout=30).stdout.strip()
    assert state == "not-found"  # removed with the container


def test_systemd_update_changes_unit_properties(box: Box, systemd_driver: None) -> None:
    name = box.run_d("--memory", "32m", box.image, "sleep", "60")
    ident = box.cli("inspect", "-f", "{{.Id}}", name).stdout.strip()
    scope = f"docker-{ident}.scope"

    def unit(prop: str) -> str:
        return subprocess.run(["systemctl", "show", "-p", prop, "--value", scope],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    assert unit("MemoryMax") == str(32 << 20)
    box.cli("update", "--memory", "48m", "--memory-swap", "64m", "--pids-limit", "9", name)
    # systemd keeps the new limits (a daemon-reload would otherwise put the old ones back)
    assert (unit("MemoryMax"), unit("TasksMax")) == (str(48 << 20), "9")
    files = box.cli("exec", name, "cat", "/sys/fs/cgroup/memory.max",
                    "/sys/fs/cgroup/pids.max").stdout.split()
    assert files == [str(48 << 20), "9"]
    box.cli("rm", "-f", name)


def test_systemd_slice_parent(box: Box, raw: RawHTTP, systemd_driver: None,
                              busybox_image: str) -> None:
    bad = raw.post("/containers/create", json_body={
        "Image": busybox_image, "Cmd": ["true"], "HostConfig": {"CgroupParent": "foo"}})
    assert bad.status == 400, bad.describe()
    assert bad.error_message() == ('cgroup-parent for systemd cgroup should be a valid slice '
                                   'named as "xxx.slice"')
    ident, lines = _own_lines(box, "--cgroupns", "host", "--cgroup-parent", "pydt-cg.slice")
    assert lines == [f"0::/pydt.slice/pydt-cg.slice/docker-{ident}.scope"]
