"""The container spec: JSON round trip and Docker's default profile."""

from __future__ import annotations

import json

import pytest

from runtime.spec.defaults import (
    CAPABILITY_NAMES, DEFAULT_CAPABILITIES, DEFAULT_READONLY_PATHS, capability_mask,
    default_masked_paths, default_mounts,
)
from runtime.spec.model import (
    ContainerSpec, DeviceNode, ExecSpec, LayerMount, Mount, ProcessSpec, RootfsSpec, UserSpec,
)


def sample() -> ContainerSpec:
    return ContainerSpec(
        container_id="abc",
        process=ProcessSpec(args=("sh", "-c", "x"), env=("A=1",), cwd="/w",
                            user=UserSpec("1:2", ("wheel",)), tty=True, open_stdin=True,
                            capabilities=DEFAULT_CAPABILITIES, no_new_privileges=True,
                            rlimits=(("RLIMIT_NOFILE", 10, 20),), console_size=(24, 80),
                            oom_score_adj=-5),
        rootfs=RootfsSpec(LayerMount("overlay", "overlay", ("lowerdir=/l2:/l1", "upperdir=/u", "workdir=/w",
                                                           "index=off")), readonly=True),
        hostname="h", domainname="d", namespaces={"mnt": None, "net": "/proc/1/ns/net"},
        mounts=(Mount("/data", "bind", "/src", ("rbind", "ro")),), masked_paths=("/proc/kcore",),
        readonly_paths=("/proc/sys",), devices=(DeviceNode("/dev/null", "c", 1, 3),),
        sysctls={"net.ipv4.ip_forward": "1"}, cgroup_dirs=("/cg",), privileged=True,
        pause_before_exec=True)


def test_container_spec_json_round_trip() -> None:
    spec = sample()
    wire = json.loads(json.dumps(spec.to_json()))
    assert ContainerSpec.from_json(wire) == spec


DEEP = LayerMount("overlay", "overlay", ("lowerdir=l/A:l/B", "upperdir=/s/mounts/c/diff",
                                        "workdir=/s/mounts/c/work", "index=off"), chdir="/s")


def test_rootfs_mount_round_trip() -> None:
    for mount in (DEEP, LayerMount("bind", "/s/mounts/c/diff", ("rbind",))):
        spec = RootfsSpec(mount, readonly=True)
        assert RootfsSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(ValueError, match="absolute"):
        LayerMount("overlay", "overlay", ("lowerdir=l/A",), chdir="relative")


def test_rootfs_wire_form_keeps_the_keys_older_supervisors_read() -> None:
    wire = RootfsSpec(DEEP).to_json()
    assert (wire["lowerdirs"], wire["upperdir"], wire["workdir"], wire["chdir"]) == (
        ["l/A", "l/B"], "/s/mounts/c/diff", "/s/mounts/c/work", "/s")
    bind = RootfsSpec(LayerMount("bind", "/u", ("rbind",))).to_json()
    assert (bind["lowerdirs"], bind["upperdir"]) == ([], "/u") and "chdir" not in bind


def test_exec_spec_json_round_trip() -> None:
    spec = ExecSpec("abc", "e1", sample().process, privileged=True)
    assert ExecSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_default_capabilities_are_dockers_14() -> None:
    assert len(DEFAULT_CAPABILITIES) == 14
    assert capability_mask(DEFAULT_CAPABILITIES) == 0xA80425FB
    assert CAPABILITY_NAMES[12] == "CAP_NET_ADMIN" and CAPABILITY_NAMES[40] == "CAP_CHECKPOINT_RESTORE"


def test_default_paths_and_mounts() -> None:
    masked = default_masked_paths()
    for path in ("/proc/kcore", "/proc/keys", "/proc/interrupts", "/sys/firmware",
                 "/sys/devices/virtual/powercap"):
        assert path in masked
    assert DEFAULT_READONLY_PATHS == ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger")
    mounts = {m.destination: m for m in default_mounts(128 * 1024 * 1024)}
    assert mounts["/dev/shm"].options[-1] == "size=131072k"
    assert "ro" in mounts["/sys"].options and "newinstance" in mounts["/dev/pts"].options
