"""Bind mounts, tmpfs, read-only rootfs, restart policies and container/network events through
the stock CLI. Only what dockerd 20.10 and pydockerd share is asserted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _mount_line(mounts: str, target: str) -> list[str]:
    """The /proc/mounts fields of the mount at ``target`` (the last one wins, as the kernel's)."""
    found = [line.split() for line in mounts.splitlines() if line.split()[1:2] == [target]]
    assert found, f"{target} not mounted:\n{mounts}"
    return found[-1]


def _events(box: Box, since: float, *filters: str) -> list[dict[str, Any]]:
    args: list[str] = []
    for f in filters:
        args += ["--filter", f]
    out = box.ok("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", *args,
                 "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- bind mounts ---------------------------------------------------------------------------


def test_bind_mount_rw_shares_files_both_ways(box: Box, tmp_path: Path) -> None:
    host = tmp_path / "rw"
    host.mkdir()
    (host / "from-host").write_text("hello\n")
    proc = box.run("--rm", "-v", f"{host}:/in", box.image,
                   "sh", "-c", "cat /in/from-host && echo back > /in/from-box")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\n"
    assert (host / "from-box").read_text() == "back\n"


def test_bind_mount_ro_refuses_writes(box: Box, tmp_path: Path) -> None:
    host = tmp_path / "ro"
    host.mkdir()
    (host / "f").write_text("x\n")
    proc = box.run("--rm", "-v", f"{host}:/in:ro", box.image,
                   "sh", "-c", "cat /in/f; echo y > /in/f")
    assert proc.returncode != 0
    assert proc.stdout == "x\n"
    assert "Read-only file system" in proc.stderr
    assert (host / "f").read_text() == "x\n"


def test_mount_flag_bind_readonly_and_inspect(box: Box, tmp_path: Path) -> None:
    host = tmp_path / "m"
    host.mkdir()
    (host / "f").write_text("data\n")
    name = box.name("bind")
    proc = box.run("--name", name, "--mount", f"type=bind,src={host},dst=/in,readonly", box.image,
                   "sh", "-c", "cat /in/f; touch /in/new")
    assert proc.returncode != 0
    assert proc.stdout == "data\n"
    assert "Read-only file system" in proc.stderr
    assert not (host / "new").exists()
    mounts = box.inspect(name)["Mounts"]
    assert len(mounts) == 1, mounts
    m = mounts[0]
    assert (m["Type"], m["Source"], m["Destination"], m["RW"]) == ("bind", str(host), "/in", False)


def test_v_creates_missing_host_dir_at_start(box: Box, tmp_path: Path) -> None:
    missing = tmp_path / "not" / "there"
    name = box.name("bindnew")
    box.ok("create", "--name", name, "--network", "none", "-v", f"{missing}:/in", box.image,
           "sh", "-c", "echo z > /in/f")
    assert not missing.exists()  # created when the container starts, not at create
    proc = box.cli("start", "-a", name, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert missing.is_dir()
    for made in (missing, missing.parent):
        assert made.stat().st_mode & 0o7777 == 0o755, oct(made.stat().st_mode)
    assert (missing / "f").read_text() == "z\n"


def test_mount_flag_missing_source_fails(box: Box, tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    name = box.name("bindmiss")
    proc = box.run("--name", name, "--mount", f"type=bind,src={missing},dst=/in", box.image, "true")
    assert proc.returncode != 0
    assert f"invalid mount config for type \"bind\": bind source path does not exist: {missing}" \
        in proc.stderr, proc.stderr
    assert not missing.exists()


# --- tmpfs and read-only rootfs ------------------------------------------------------------


def test_tmpfs_default(box: Box) -> None:
    proc = box.run("--rm", "--tmpfs", "/t", box.image,
                   "sh", "-c", "echo a > /t/f && cat /t/f && cat /proc/mounts")
    assert proc.returncode == 0, proc.stderr
    first, mounts = proc.stdout.split("\n", 1)
    assert first == "a"
    fields = _mount_line(mounts, "/t")
    assert fields[2] == "tmpfs"
    assert "rw" in fields[3].split(",")


def test_tmpfs_with_size_and_mode(box: Box) -> None:
    proc = box.run("--rm", "--tmpfs", "/t:size=1m,mode=1777", box.image,
                   "sh", "-c", "stat -c %a /t && cat /proc/mounts")
    assert proc.returncode == 0, proc.stderr
    mode, mounts = proc.stdout.split("\n", 1)
    assert mode == "1777"
    fields = _mount_line(mounts, "/t")
    assert fields[2] == "tmpfs"
    opts = fields[3].split(",")
    # the kernel lists mode= only when it differs from tmpfs's default 1777
    assert "size=1024k" in opts, opts


def test_tmpfs_non_default_mode_in_proc_mounts(box: Box) -> None:
    proc = box.run("--rm", "--tmpfs", "/t:mode=700", box.image,
                   "sh", "-c", "stat -c %a /t && cat /proc/mounts")
    assert proc.returncode == 0, proc.stderr
    mode, mounts = proc.stdout.split("\n", 1)
    assert mode == "700"
    assert "mode=700" in _mount_line(mounts, "/t")[3].split(",")


def test_read_only_rootfs(box: Box) -> None:
    proc = box.run("--rm", "--read-only", box.image, "touch", "/x")
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr


def test_read_only_rootfs_with_tmpfs_tmp(box: Box) -> None:
    proc = box.run("--rm", "--read-only", "--tmpfs", "/tmp", box.image,
                   "sh", "-c", "echo ok > /tmp/f && cat /tmp/f; touch /etc/x")
    assert proc.stdout == "ok\n"
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr


# --- restart policies ----------------------------------------------------------------------


def test_restart_on_failure_max_count(box: Box) -> None:
    name = box.run_d("--restart", "on-failure:2", box.image, "sh", "-c", "exit 1")
    info = box.inspect(name)
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}

    def done(s: dict[str, Any]) -> bool:
        return bool(s["Status"] == "exited" and box.inspect(name)["RestartCount"] == 2)

    state = box.wait_until(name, done, timeout=20)
    assert state["ExitCode"] == 1
    time.sleep(1.0)  # no third attempt
    info = box.inspect(name)
    assert info["RestartCount"] == 2
    assert info["State"]["Status"] == "exited"


def test_restart_always_restarts_after_exit(box: Box) -> None:
    name = box.run_d("--restart", "always", box.image, "sh", "-c", "sleep 0.2")
    assert box.inspect(name)["HostConfig"]["RestartPolicy"] == {
        "Name": "always", "MaximumRetryCount": 0}
    deadline = time.monotonic() + 20
    while box.inspect(name)["RestartCount"] < 2:
        assert time.monotonic() < deadline, box.inspect(name)
        time.sleep(0.1)


def test_stop_keeps_always_container_stopped(box: Box) -> None:
    name = box.run_d("--restart", "always", box.image, "sleep", "300")
    box.wait_until(name, lambda s: s["Running"])
    assert box.ok("stop", "-t", "1", name) == f"{name}\n"
    time.sleep(1.5)
    info = box.inspect(name)
    assert info["State"]["Status"] == "exited", info["State"]
    assert info["State"]["Running"] is False
    assert info["RestartCount"] == 0


def test_restart_policy_default_is_no(box: Box) -> None:
    name = box.name("norestart")
    box.ok("create", "--name", name, "--network", "none", box.image, "true")
    policy = box.inspect(name)["HostConfig"]["RestartPolicy"]
    assert policy["Name"] in ("no", "")  # the CLI sends "no"; an API client may send nothing
    assert policy["MaximumRetryCount"] == 0


# --- events --------------------------------------------------------------------------------


def test_container_lifecycle_events(box: Box) -> None:
    since = time.time() - 1
    name = box.name("ev")
    proc = box.run("--name", name, box.image, "sh", "-c", "exit 3")
    assert proc.returncode == 3, proc.stderr
    box.ok("rm", name)
    events = _events(box, since, f"container={name}", "type=container")
    actions = [e["Action"] for e in events]
    assert [a for a in actions if a in ("create", "start", "die", "destroy")] == [
        "create", "start", "die", "destroy"], actions
    die = next(e for e in events if e["Action"] == "die")
    attrs = die["Actor"]["Attributes"]
    assert attrs["exitCode"] == "3"
    assert attrs["name"] == name
    assert all(e["Type"] == "container" for e in events)
    ids = {e["Actor"]["ID"] for e in events}
    assert len(ids) == 1 and len(ids.pop()) == 64


def test_network_connect_disconnect_events(box: Box, tracker: ResourceTracker) -> None:
    since = time.time() - 1
    home = tracker.network(unique("evhome"))
    box.ok("network", "create", home)
    net = tracker.network(unique("evnet"))
    box.ok("network", "create", net)
    # a container on "none" cannot join other networks, so it starts on a user network
    name = box.run_d(box.image, "sleep", "300", network=home)
    cid = box.inspect(name)["Id"]
    box.ok("network", "connect", net, name)
    box.ok("network", "disconnect", net, name)
    box.ok("network", "rm", net)
    events = _events(box, since, f"network={net}", "type=network")
    actions = [e["Action"] for e in events]
    # dockerd 20.10 publishes "disconnect" twice in a row for one disconnect; compare runs
    runs = [a for i, a in enumerate(actions) if i == 0 or actions[i - 1] != a]
    assert runs == ["create", "connect", "disconnect", "destroy"], actions
    for e in events:
        assert e["Type"] == "network"
        assert e["Actor"]["Attributes"]["name"] == net
        assert e["Actor"]["Attributes"]["type"] == "bridge"
    for e in events:
        if e["Action"] in ("connect", "disconnect"):
            assert e["Actor"]["Attributes"]["container"] == cid
    assert len({e["Actor"]["ID"] for e in events}) == 1
