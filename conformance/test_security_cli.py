"""Docker's default security profile and resource limits, observed from inside the container:
capabilities, masked and read-only paths, the default mounts and devices, no-new-privileges,
the memory limit's OOM kill, and the pids/cpu limits in the container's cgroup files."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

DEFAULT_CAPS = "00000000a80425fb"  # Docker's 14 default capabilities
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_CHOWN = 0

# dockerd 20.10's masked paths (28 adds /proc/interrupts and the thermal_throttle directories).
MASKED_FILES = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
]
MASKED_DIRS = ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware"]
READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def local(docker_host: str) -> None:
    """These tests compare what a container sees with this host: the engine must be local."""
    if not docker_host.startswith("unix://"):
        pytest.skip("the engine under test is not on this host")


def _caps(box: Box, *flags: str) -> dict[str, str]:
    proc = box.run("--rm", *flags, box.image, "grep", "^Cap", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    return {
        k: v.strip()
        for k, v in (line.split(":", 1) for line in proc.stdout.splitlines())
    }


def _host_status(field: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/self/status")


# --- capabilities ----------------------------------------------------------------------------


def test_default_capabilities(box: Box) -> None:
    caps = _caps(box)
    assert caps == {
        "CapInh": "0000000000000000",
        "CapPrm": DEFAULT_CAPS,
        "CapEff": DEFAULT_CAPS,
        "CapBnd": DEFAULT_CAPS,
        "CapAmb": "0000000000000000",
    }


def test_cap_drop_all(box: Box) -> None:
    caps = _caps(box, "--cap-drop", "ALL")
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == ("0000000000000000",) * 3


def test_cap_add_net_admin(box: Box) -> None:
    caps = _caps(box, "--cap-add", "NET_ADMIN")
    assert int(caps["CapEff"], 16) == int(DEFAULT_CAPS, 16) | (1 << CAP_NET_ADMIN)
    assert caps["CapEff"] == caps["CapBnd"] == "00000000a80435fb"


def test_cap_drop_one_and_add_back(box: Box) -> None:
    assert int(_caps(box, "--cap-drop", "NET_RAW")["CapEff"], 16) == int(
        DEFAULT_CAPS, 16
    ) & ~(1 << CAP_NET_RAW)
    only_chown = _caps(box, "--cap-drop", "ALL", "--cap-add", "CAP_CHOWN")
    assert int(only_chown["CapEff"], 16) == 1 << CAP_CHOWN


def test_cap_drop_all_is_enforced(box: Box) -> None:
    proc = box.run("--rm", "--cap-drop", "ALL", box.image, "chown", "65534", "/tmp")
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stderr


def test_non_root_user_has_no_effective_caps(box: Box) -> None:
    caps = _caps(box, "-u", "65534:65534")
    assert caps["CapEff"] == caps["CapPrm"] == "0000000000000000"
    assert caps["CapBnd"] == DEFAULT_CAPS


def _skip_if_reference_cannot(engine: Engine, proc_stderr: str) -> None:
    # runc asks for every capability it knows; on a host (like this VM) whose root lacks some of
    # them, dockerd+runc cannot start a privileged container at all.
    if not engine.is_pydockerd and "unable to apply caps" in proc_stderr:
        pytest.skip(
            "the reference engine's runc cannot start privileged containers on this host"
        )


def test_privileged_gets_all_host_caps(box: Box, engine: Engine, local: None) -> None:
    proc = box.run(
        "--rm",
        "--privileged",
        box.image,
        "sh",
        "-c",
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
    )
    _skip_if_reference_cannot(engine, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    caps = dict(line.replace("\t", "").split(":") for line in proc.stdout.splitlines())
    assert caps["CapEff"] == caps["CapBnd"] == _host_status("CapBnd")


def test_privileged_has_no_masked_or_readonly_paths(
    box: Box, engine: Engine, local: None
) -> None:
    proc = box.run(
        "--rm", "--privileged", box.image, "sh", "-c",
        "grep -c . /proc/timer_list; grep ' /proc/sys ' /proc/self/mountinfo || echo no-sys-mount",
    )  # fmt: skip
    _skip_if_reference_cannot(engine, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert int(lines[0]) > 0, "/proc/timer_list is still masked"
    assert lines[1] == "no-sys-mount"


def test_privileged_sees_host_devices(box: Box, engine: Engine, local: None) -> None:
    wanted = [
        d
        for d in ("/dev/kmsg", "/dev/loop0", "/dev/loop-control", "/dev/mem")
        if Path(d).exists()
    ]
    if not wanted:
        pytest.skip("none of the probe devices exists on this host")
    probe = "; ".join(f"stat -c '%n %t:%T' {d}" for d in wanted)
    proc = box.run("--rm", "--privileged", box.image, "sh", "-c", probe)
    _skip_if_reference_cannot(engine, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    expected = [
        f"{d} {os.major(os.stat(d).st_rdev):x}:{os.minor(os.stat(d).st_rdev):x}"
        for d in wanted
    ]
    assert proc.stdout.splitlines() == expected
    # ... and a non-privileged container does not.
    proc = box.run("--rm", box.image, "sh", "-c", f"test -e {wanted[0]}")
    assert proc.returncode == 1


# --- masked and read-only paths --------------------------------------------------------------


@pytest.mark.parametrize("path", MASKED_FILES)
def test_masked_file(box: Box, local: None, path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} does not exist on this kernel")
    proc = box.run(
        "--rm", box.image, "sh", "-c", f"stat -c '%F %t:%T' {path}; wc -c < {path}"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["character special file 1:3", "0"], (
        proc.stdout
    )


@pytest.mark.parametrize("path", MASKED_DIRS)
def test_masked_dir(box: Box, local: None, path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} does not exist on this kernel")
    proc = box.run(
        "--rm", box.image, "sh", "-c", f"ls -A {path} | wc -l; touch {path}/x"
    )
    assert proc.stdout.split("\n")[0].strip() == "0", proc.stdout
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr, proc.stderr


@pytest.mark.parametrize("path", READONLY_PATHS)
def test_readonly_path_mount(box: Box, local: None, path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} does not exist on this kernel")
    proc = box.run("--rm", box.image, "cat", "/proc/self/mountinfo")
    assert proc.returncode == 0, proc.stderr
    mounts = [line.split() for line in proc.stdout.splitlines()]
    opts = [m[5] for m in mounts if m[4] == path]
    assert opts, f"{path} is not a mount point in the container"
    assert opts[-1].split(",")[0] == "ro", opts


def test_proc_sys_is_read_only(box: Box) -> None:
    proc = box.run(
        "--rm", box.image, "sh", "-c", "echo changed > /proc/sys/kernel/hostname"
    )
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr
    proc = box.run("--rm", box.image, "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches")
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr


def test_sys_is_read_only(box: Box) -> None:
    proc = box.run("--rm", box.image, "touch", "/sys/x")
    assert proc.returncode == 1
    assert "Read-only file system" in proc.stderr


# --- default mounts, devices, no-new-privileges ---------------------------------------------


def test_default_mounts(box: Box) -> None:
    proc = box.run("--rm", box.image, "cat", "/proc/self/mountinfo")
    assert proc.returncode == 0, proc.stderr
    mounts: dict[str, tuple[str, str, str]] = {}
    for line in proc.stdout.splitlines():
        fields = line.split()
        sep = fields.index("-")
        mounts[fields[4]] = (
            fields[5],
            fields[sep + 1],
            fields[sep + 3],
        )  # mount opts, fstype, super opts
    assert mounts["/"][0].startswith("rw")
    assert mounts["/proc"][:2] == ("rw,nosuid,nodev,noexec,relatime", "proc")
    dev_opts, dev_type, dev_super = mounts["/dev"]
    assert (dev_opts.split(",")[:2], dev_type) == (["rw", "nosuid"], "tmpfs")
    assert {"size=65536k", "mode=755"} <= set(dev_super.split(",")), dev_super
    pts_opts, pts_type, pts_super = mounts["/dev/pts"]
    assert pts_type == "devpts" and {"nosuid", "noexec"} <= set(pts_opts.split(","))
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= set(pts_super.split(",")), pts_super
    assert mounts["/sys"][:2] == ("ro,nosuid,nodev,noexec,relatime", "sysfs")
    assert mounts["/dev/mqueue"][:2] == ("rw,nosuid,nodev,noexec,relatime", "mqueue")
    shm_opts, shm_type, shm_super = mounts["/dev/shm"]
    assert (shm_opts, shm_type) == ("rw,nosuid,nodev,noexec,relatime", "tmpfs")
    assert "size=65536k" in shm_super.split(","), shm_super
    for etc in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
        assert etc in mounts, f"{etc} is not bind-mounted"
    # v1: a tmpfs with one read-only mount per hierarchy; v2: one read-only cgroup2 mount.
    cgroup = {
        t: m
        for t, m in mounts.items()
        if t.startswith("/sys/fs/cgroup") and m[1] in ("cgroup", "cgroup2")
    }
    assert cgroup and all(
        opts.split(",")[0] == "ro" for opts, _, _ in cgroup.values()
    ), cgroup


def test_default_devices(box: Box) -> None:
    proc = box.run(
        "--rm",
        box.image,
        "sh",
        "-c",
        "cd /dev && for d in *; do stat -c '%n %F %t:%T %a' $d; done",
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        line.split()
        for line in proc.stdout.splitlines()
        if " character special file " in line
    ]
    devices = {row[0]: (row[-2], row[-1]) for row in rows}
    assert devices == {
        "full": ("1:7", "666"),
        "null": ("1:3", "666"),
        "random": ("1:8", "666"),
        "tty": ("5:0", "666"),
        "urandom": ("1:9", "666"),
        "zero": ("1:5", "666"),
    }, proc.stdout
    proc = box.run(
        "--rm",
        box.image,
        "sh",
        "-c",
        "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done",
    )
    assert proc.stdout.split() == [
        "pts/ptmx",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
    ]


def test_device_cgroup_denies_mknod_use(box: Box) -> None:
    # CAP_MKNOD lets root create the node, but the device cgroup forbids opening it.
    proc = box.run(
        "--rm", box.image, "sh", "-c", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda"
    )
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stderr, proc.stderr


def test_shm_size(box: Box) -> None:
    proc = box.run("--rm", "--shm-size", "16m", box.image, "df", "-k", "/dev/shm")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[1] == "16384", proc.stdout


def test_no_new_privileges(box: Box) -> None:
    proc = box.run("--rm", box.image, "grep", "NoNewPrivs", "/proc/self/status")
    assert proc.stdout.split() == ["NoNewPrivs:", "0"]
    proc = box.run(
        "--rm",
        "--security-opt",
        "no-new-privileges",
        box.image,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    )
    assert proc.stdout.split() == ["NoNewPrivs:", "1"]


def test_fds_closed(box: Box) -> None:
    # Nothing of the runtime leaks into the container: only stdio (and ls's own directory fd).
    proc = box.run("--rm", box.image, "ls", "/proc/self/fd")
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(fd) for fd in proc.stdout.split()) == [0, 1, 2, 3], proc.stdout


# --- resource limits -------------------------------------------------------------------------


def test_memory_limit_oom_kill(box: Box) -> None:
    name = box.name()
    since = str(int(time.time()) - 1)
    proc = box.run(
        "--name",
        name,
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        box.image,
        "tail",
        "/dev/zero",
        timeout=60,
    )
    assert proc.returncode == 137, proc.stderr
    state = box.state(name)
    assert (state["ExitCode"], state["OOMKilled"], state["Status"]) == (
        137,
        True,
        "exited",
    )
    host = box.inspect(name)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (32 * 1024 * 1024, 32 * 1024 * 1024)
    events = box.ok("events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", f"container={name}", "--format", "{{.Action}}")
    assert [e for e in events.split() if e in ("oom", "die")] == ["oom", "die"], events


def _cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def test_memory_limit_visible(box: Box, local: None) -> None:
    if _cgroup_v1():
        cmd = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
        expected = ["33554432", "67108864"]
    else:
        cmd = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max"
        expected = ["33554432", "33554432"]
    proc = box.run(
        "--rm", "--memory", "32m", "--memory-swap", "64m", box.image, "sh", "-c", cmd
    )
    assert (proc.returncode, proc.stdout.split()) == (0, expected), proc.stderr


def test_pids_limit_visible_and_enforced(box: Box, local: None) -> None:
    path = "/sys/fs/cgroup/pids/pids.max" if _cgroup_v1() else "/sys/fs/cgroup/pids.max"
    proc = box.run("--rm", "--pids-limit", "10", box.image, "cat", path)
    assert (proc.returncode, proc.stdout) == (0, "10\n"), proc.stderr
    proc = box.run("--rm", box.image, "cat", path)
    assert proc.stdout == "max\n"
    proc = box.run(
        "--rm", "--pids-limit", "10", box.image, "sh", "-c", "for i in $(seq 20); do sleep 2 & done; wait"
    )  # fmt: skip
    assert proc.returncode != 0
    assert "can't fork" in proc.stderr, proc.stderr


def test_cpus_visible(box: Box, local: None) -> None:
    if _cgroup_v1():
        cmd = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"
        expected = ["50000", "100000"]
    else:
        cmd = "cat /sys/fs/cgroup/cpu.max"
        expected = ["50000", "100000"]
    proc = box.run("--rm", "--cpus", "0.5", box.image, "sh", "-c", cmd)
    assert (proc.returncode, proc.stdout.split()) == (0, expected), proc.stderr


def test_cpu_shares_and_cpuset_visible(box: Box, local: None) -> None:
    if not _cgroup_v1():
        pytest.skip("cgroup v1 file names")
    proc = box.run(
        "--rm", "--cpu-shares", "512", "--cpuset-cpus", "0", box.image, "sh", "-c",
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus",
    )  # fmt: skip
    assert (proc.returncode, proc.stdout.split()) == (0, ["512", "0"]), proc.stderr


def test_container_has_its_own_cgroup(box: Box, local: None) -> None:
    name = box.run_d(box.image, "sleep", "300")
    info = box.inspect(name)
    host_cgroups = Path(f"/proc/{info['State']['Pid']}/cgroup").read_text()
    # v1: the resource controllers; v2: the unified line.
    pattern = r"\d+:(memory|pids|cpu,cpuacct|cpu):" if _cgroup_v1() else r"0::"
    lines = [line for line in host_cgroups.splitlines() if re.match(pattern, line)]
    assert lines and all(info["Id"] in line for line in lines), host_cgroups
