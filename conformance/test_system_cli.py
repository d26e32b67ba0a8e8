"""System commands through the stock docker CLI: version, info, system df, events."""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conformance.apiversion import negotiated
from conformance.cli import DockerCLI
from conformance.conftest import Advertised, Engine
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _meminfo_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def _host_cgroup_version() -> str:
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


def _os_pretty_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def _is_local(host: str) -> bool:
    return host.startswith("unix://")


def test_docker_version_prints_server_section(docker_cli: DockerCLI, advertised: Advertised) -> None:
    out = docker_cli.ok("version")
    assert "Server:" in out, out
    server = out.split("Server:", 1)[1]
    api = re.escape(advertised.api_version)
    minimum = re.escape(advertised.min_api_version)
    assert re.search(rf"^\s+API version:\s+{api} \(minimum version {minimum}\)$", server, re.MULTILINE), out
    assert re.search(r"^\s+Version:\s+\d+\.\d+\.\d+", server, re.MULTILINE), out


def test_docker_version_json_server_fields(docker_cli: DockerCLI, advertised: Advertised, docker_host: str) -> None:
    server = json.loads(docker_cli.ok("version", "--format", "{{json .Server}}"))
    assert server["ApiVersion"] == advertised.api_version
    assert server["MinAPIVersion"] == advertised.min_api_version
    assert server["Os"] == "linux"
    assert server["Arch"] == GO_ARCH.get(platform.machine(), platform.machine())
    assert server["Version"].split(".")[0].isdigit(), server["Version"]
    assert isinstance(server["Components"], list) and server["Components"]
    engine = [c for c in server["Components"] if c["Name"] == "Engine"]
    assert engine and engine[0]["Version"] == server["Version"]
    if _is_local(docker_host):
        assert server["KernelVersion"] == os.uname().release


def test_cli_negotiates_the_advertised_version(
    docker_cli: DockerCLI, advertised: Advertised, cli_max_api: str
) -> None:
    client_api = docker_cli.ok("version", "--format", "{{.Client.APIVersion}}").strip()
    assert client_api == negotiated(advertised.api_version, cli_max_api)


def test_docker_info_prints_server_section(docker_cli: DockerCLI) -> None:
    proc = docker_cli("info")
    assert proc.returncode == 0, proc.stderr
    assert "Server:" in proc.stdout
    assert "Server Version:" in proc.stdout
    assert "ERROR" not in proc.stdout


def test_docker_info_json_reports_the_host(docker_cli: DockerCLI, docker_host: str, engine: Engine) -> None:
    info = json.loads(docker_cli.ok("info", "--format", "{{json .}}"))
    assert info.get("ServerErrors") in (None, []), info.get("ServerErrors")
    assert info["OSType"] == "linux"
    assert info["Architecture"] == platform.machine()
    assert info["CgroupDriver"] in ("cgroupfs", "systemd")
    assert info["Driver"]
    assert info["ID"]
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images"):
        assert isinstance(info[key], int) and info[key] >= 0, key
    assert info["Containers"] == info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"]
    assert info["DockerRootDir"].startswith("/")
    if engine.daemon is not None:
        assert info["DockerRootDir"] == str(engine.daemon.data_root)
    if _is_local(docker_host):
        assert info["NCPU"] == os.cpu_count()
        assert info["MemTotal"] == _meminfo_total_bytes()
        assert info["KernelVersion"] == os.uname().release
        assert info["CgroupVersion"] == _host_cgroup_version()
        assert info["Name"] == socket.gethostname()
        assert info["OperatingSystem"].startswith(_os_pretty_name())


def test_info_runtime_is_the_one_containers_get(docker_cli: DockerCLI, tracker: ResourceTracker,
                                                busybox_image: str) -> None:
    info = json.loads(docker_cli.ok("info", "--format", "{{json .}}"))
    cid = tracker.container(docker_cli.ok("create", busybox_image, "true").strip())
    runtime = docker_cli.ok("inspect", "--format", "{{.HostConfig.Runtime}}", cid).strip()
    assert runtime == info["DefaultRuntime"] and runtime in info["Runtimes"], (runtime, info["Runtimes"])


def test_info_backing_filesystem_is_the_data_roots(docker_cli: DockerCLI, docker_host: str) -> None:
    info = json.loads(docker_cli.ok("info", "--format", "{{json .}}"))
    status = dict(info["DriverStatus"])
    if info["Driver"] != "overlay2" or not _is_local(docker_host):
        pytest.skip("needs a local overlay2 engine")
    # statfs magics as moby names them (daemon/internal/fstype), measured here with stat -f
    names = {0xEF53: "extfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
             0x794C7630: "overlayfs", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0x65735546: "fuse"}
    magic = subprocess.run(["stat", "-f", "-c", "%t", info["DockerRootDir"]], capture_output=True,
                           text=True, check=True).stdout
    assert status["Backing Filesystem"] == names.get(int(magic, 16), "<unknown>")
    metacopy = Path("/sys/module/overlay/parameters/metacopy")
    if metacopy.exists() and "Using metacopy" in status:  # (20.10 has no such row)
        assert status["Using metacopy"] == str(metacopy.read_text().strip() == "Y").lower()


def test_docker_info_id_is_stable(docker_cli: DockerCLI) -> None:
    first = docker_cli.ok("info", "--format", "{{.ID}}").strip()
    second = docker_cli.ok("info", "--format", "{{.ID}}").strip()
    assert first and first == second


def test_docker_system_df(docker_cli: DockerCLI) -> None:
    out = docker_cli.ok("system", "df")
    assert out.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = [json.loads(line) for line in docker_cli.ok("system", "df", "--format", "{{json .}}").splitlines()]
    assert [r["Type"] for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    for row in rows:
        assert int(row["TotalCount"]) >= int(row["Active"]) >= 0


def test_docker_system_df_verbose(docker_cli: DockerCLI) -> None:
    out = docker_cli.ok("system", "df", "-v")
    for heading in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:"):
        assert heading in out


def _create_volume_if_supported(raw: RawHTTP, tracker: ResourceTracker) -> str | None:
    """Make the engine emit an event: create a volume (returns its name, None if unsupported)."""
    name = f"conf-events-{uuid.uuid4().hex[:12]}"
    resp = raw.post("/volumes/create", json_body={"Name": name})
    if resp.status in (404, 501):
        return None
    assert resp.status == 201, resp.describe()
    tracker.volume(name)
    return name


def test_docker_events_since_until_terminates(
    docker_cli: DockerCLI, raw: RawHTTP, tracker: ResourceTracker
) -> None:
    volume = _create_volume_if_supported(raw, tracker)
    # until is compared with nanosecond event times: use a bound safely after the create.
    until = str(int(time.time()) + 1)
    time.sleep(1.1)
    proc = docker_cli("events", "--since", "0", "--until", until, "--format", "{{json .}}", timeout=30)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    for event in events:
        assert {"Type", "Action", "Actor", "time", "timeNano"} <= event.keys(), event
        assert event["time"] <= int(until)
    if volume is not None:
        matching = [e for e in events if e["Type"] == "volume" and e["Actor"]["ID"] == volume]
        assert [e["Action"] for e in matching] == ["create"], events[-5:]


def test_docker_events_filter_excludes_other_types(
    docker_cli: DockerCLI, raw: RawHTTP, tracker: ResourceTracker
) -> None:
    volume = _create_volume_if_supported(raw, tracker)
    if volume is None:
        pytest.skip("engine cannot create volumes yet; nothing to filter")
    until = str(int(time.time()) + 1)
    time.sleep(1.1)
    args = ["events", "--since", "0", "--until", until, "--format", "{{json .}}"]
    proc = docker_cli(*args, "--filter", "type=network", timeout=30)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert all(e["Type"] == "network" for e in events), events
    proc = docker_cli(*args, "--filter", f"volume={volume}", timeout=30)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [(e["Type"], e["Action"]) for e in events] == [("volume", "create")]


@pytest.mark.reference
def test_reference_engine_reports_the_same_host(docker_cli: DockerCLI, reference_cli: DockerCLI) -> None:
    # Both engines run on this machine: host facts in `docker info` must agree.
    fmt = "{{.NCPU}} {{.MemTotal}} {{.KernelVersion}} {{.OSType}} {{.Architecture}} {{.CgroupVersion}}"
    assert docker_cli.ok("info", "--format", fmt) == reference_cli.ok("info", "--format", fmt)
