"""Per-container cgroups: v2 against a fake tree, v1 against this host's real hierarchies."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.linux.cgroups import (
    DEFAULT_DEVICE_RULES, PRIVILEGED_DEVICE_RULES, CgroupManager, Resources, cpu_quota_period, detect_hybrid_unified,
    detect_v1_hierarchies, shares_to_weight,
)
from runtime.linux.devices import device_program, parse_rule
from runtime.linux.syscalls_fake import RecordingSyscalls


def make_v2_tree(root: Path) -> None:
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")


def read(path: Path) -> str:
    return path.read_text().strip()


def test_nano_cpus_become_quota_over_100ms_period() -> None:
    assert cpu_quota_period(Resources(nano_cpus=1_500_000_000)) == (150000, 100000)
    assert cpu_quota_period(Resources(cpu_quota=50000, cpu_period=200000)) == (50000, 200000)
    assert shares_to_weight(1024) == 39 and shares_to_weight(2) == 1 and shares_to_weight(0) == 0


def test_v2_detected_and_files_written(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    make_v2_tree(root)
    sys = RecordingSyscalls()
    m = CgroupManager("pydockerd", root=str(root), mountinfo="", syscalls=sys)
    assert m.version == "2" and m.unified is None
    h = m.create("c1", Resources(memory=64 << 20, memory_swap=96 << 20, memory_reservation=32 << 20,
                                 nano_cpus=500_000_000, cpu_shares=512, cpuset_cpus="0",
                                 pids_limit=10, blkio_weight=500))
    d = root / "pydockerd" / "c1"
    assert h.dirs == (str(d),)
    assert read(root / "cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids"
    assert read(d / "memory.max") == str(64 << 20)
    assert read(d / "memory.swap.max") == str(32 << 20)   # v2 swap excludes memory
    assert read(d / "memory.low") == str(32 << 20)
    assert read(d / "cpu.max") == "50000 100000"
    assert read(d / "cpu.weight") == str(shares_to_weight(512))
    assert read(d / "cpuset.cpus") == "0"
    assert read(d / "pids.max") == "10"
    assert read(d / "io.weight") == "default 4950"  # 1 + (500-10)*9999//990
    # the device program: loaded and attached to the container's directory
    (_type, insns, _lic), = sys.of("bpf_prog_load")
    assert insns == device_program(tuple(parse_rule(r) for r in DEFAULT_DEVICE_RULES))
    assert [a[0] for a in sys.of("bpf_prog_attach")] == [str(d)]


def test_v2_unlimited_and_oom(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    make_v2_tree(root)
    (root / "pydockerd").mkdir()
    (root / "pydockerd" / "cgroup.controllers").write_text("cpu memory pids\n")
    sys = RecordingSyscalls()
    m = CgroupManager("pydockerd", root=str(root), mountinfo="", syscalls=sys)
    h = m.create("c2", Resources(memory_swap=-1, device_rules=PRIVILEGED_DEVICE_RULES))
    (_type, insns, _lic), = sys.of("bpf_prog_load")
    assert insns == device_program((parse_rule("a *:* rwm"),))
    d = root / "pydockerd" / "c2"
    assert read(d / "memory.max") == "max" and read(d / "pids.max") == "max"
    assert read(d / "memory.swap.max") == "max"
    assert not (d / "cpu.max").exists()
    assert not m.oom_killed(h)
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert m.oom_killed(h)


def test_v1_hierarchy_detection() -> None:
    info = ("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
    assert detect_v1_hierarchies(info) == {"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                                          "name=systemd": "/sys/fs/cgroup/systemd"}


def hybrid_tree(root: Path, with_unified: bool) -> str:
    """A fake v1 tree (memory, pids, name=systemd) and its mountinfo, plus a cgroup2
    hierarchy at ``unified`` when asked."""
    lines = []
    for i, (name, opts) in enumerate((("memory", "rw,memory"), ("pids", "rw,pids"),
                                      ("systemd", "rw,xattr,name=systemd"))):
        (root / name).mkdir(parents=True)
        lines.append(f"{30 + i} 25 0:{40 + i} / {root / name} rw,relatime - cgroup cgroup {opts}")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    if with_unified:
        (root / "unified").mkdir()
        (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")
        lines.append(f"29 25 0:39 / {root / 'unified'} rw,nosuid - cgroup2 cgroup2 rw")
    return "\n".join(lines) + "\n"


def test_hybrid_unified_detection() -> None:
    info = ("41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")
    assert detect_hybrid_unified(info) == "/sys/fs/cgroup/unified"
    # a pure v2 host's root mount is not a hybrid one; other cgroup2 mounts don't count
    assert detect_hybrid_unified("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n") is None
    assert detect_hybrid_unified("29 1 0:26 / /mnt/cg2 rw - cgroup2 none rw\n") is None


def test_v1_hybrid_container_gets_a_unified_dir_and_loses_it_on_remove(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    m = CgroupManager("pd", root=str(root), mountinfo=hybrid_tree(root, with_unified=True))
    assert m.version == "1" and m.unified == str(root / "unified")
    assert "" not in m.hierarchies  # not a v1 hierarchy: never written as one
    h = m.create("c1", Resources(memory=32 << 20, pids_limit=5))
    unified = root / "unified" / "pd" / "c1"
    assert h.dirs == (str(root / "memory/pd/c1"), str(root / "systemd/pd/c1"),
                      str(root / "pids/pd/c1"), str(unified))
    assert unified.is_dir() and list(unified.iterdir()) == []  # no controller files written
    assert read(root / "memory/pd/c1/memory.limit_in_bytes") == str(32 << 20)
    for d in h.dirs:  # rmdir on a fake tree needs empty dirs; the kernel's cgroupfs does not
        for f in Path(d).iterdir():
            f.unlink()
    m.remove(h)
    assert not any(Path(d).exists() for d in h.dirs)


def test_v1_without_unified_mount_keeps_v1_dirs_only(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    m = CgroupManager("pd", root=str(root), mountinfo=hybrid_tree(root, with_unified=False))
    assert m.unified is None
    h = m.create("c1", Resources())
    assert [Path(d).relative_to(root).parts[0] for d in h.dirs] == ["memory", "systemd", "pids"]


v1_host = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/memory")
    or os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="needs root on cgroup v1")


@pytest.fixture
def v1() -> Iterator[CgroupManager]:
    m = CgroupManager(f"pydockerd-test-{uuid.uuid4().hex[:8]}")
    yield m
    for mountpoint in [*m.hierarchies.values(), *([m.unified] if m.unified else [])]:
        parent = Path(mountpoint) / m.parent
        if parent.exists():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


@v1_host
def test_v1_real_limits(v1: CgroupManager) -> None:
    assert v1.version == "1"
    h = v1.create("c1", Resources(memory=32 << 20, memory_swap=48 << 20, memory_reservation=16 << 20,
                                  nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=7))
    mem = Path("/sys/fs/cgroup/memory") / v1.parent / "c1"
    assert str(mem) in h.dirs
    assert read(mem / "memory.limit_in_bytes") == str(32 << 20)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(48 << 20)
    assert read(mem / "memory.soft_limit_in_bytes") == str(16 << 20)
    cpu = Path("/sys/fs/cgroup/cpu") / v1.parent / "c1"
    assert (read(cpu / "cpu.cfs_quota_us"), read(cpu / "cpu.cfs_period_us")) == ("150000", "100000")
    assert read(cpu / "cpu.shares") == "512"
    assert read(Path("/sys/fs/cgroup/pids") / v1.parent / "c1" / "pids.max") == "7"
    cpuset = Path("/sys/fs/cgroup/cpuset") / v1.parent / "c1"
    assert read(cpuset / "cpuset.cpus") == read(Path("/sys/fs/cgroup/cpuset/cpuset.cpus"))
    devices = Path("/sys/fs/cgroup/devices") / v1.parent / "c1" / "devices.list"
    rules = read(devices).splitlines()
    assert "c 1:3 rwm" in rules and "a *:* rwm" not in rules
    # lowering both limits must work whatever the write order constraint is
    v1.update(h, Resources(memory=16 << 20, memory_swap=16 << 20))
    assert read(mem / "memory.memsw.limit_in_bytes") == str(16 << 20)
    v1.update(h, Resources(memory=64 << 20, memory_swap=128 << 20))
    assert read(mem / "memory.limit_in_bytes") == str(64 << 20)
    stats = v1.stats(h)
    assert stats.memory_limit == 64 << 20 and stats.pids_current == 0
    assert not v1.oom_killed(h)
    if v1.unified is not None:  # this hybrid host's cgroup2 hierarchy
        assert h.dirs[-1] == os.path.join(v1.unified, v1.parent, "c1")
        assert os.path.isdir(h.dirs[-1])
    v1.remove(h)
    assert not mem.exists()
    assert not any(os.path.exists(d) for d in h.dirs)


@v1_host
def test_v1_privileged_devices_allow_all(v1: CgroupManager) -> None:
    h = v1.create("c2", Resources(device_rules=PRIVILEGED_DEVICE_RULES))
    devices = Path("/sys/fs/cgroup/devices") / v1.parent / "c2" / "devices.list"
    assert read(devices) == "a *:* rwm"
    v1.remove(h)


def test_v2_cgroup_parent_placement(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    make_v2_tree(root)
    m = CgroupManager("pydockerd", root=str(root), mountinfo="", syscalls=RecordingSyscalls())
    assert m.create("c1", Resources(), "/abs/x").dirs == (str(root / "abs/x/c1"),)
    own = next(line for line in Path("/proc/self/cgroup").read_text().splitlines()
               if line.startswith("0::")).partition("::")[2].strip("/")
    rel = m.create("c2", Resources(), "rel")
    assert rel.dirs == (str(root / own / "rel" / "c2"),)
    assert m.handle_for("c2", "rel") == rel and m.handle_for("c1", "/abs/x").dirs[0].endswith("/abs/x/c1")
    assert m.handle_for("c3").dirs == (str(root / "pydockerd" / "c3"),)
