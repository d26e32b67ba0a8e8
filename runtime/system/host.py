"""Facts about the host read from /proc, /sys and /etc: the data behind ``GET /info``."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class HostFacts:
    name: str
    ncpu: int
    mem_total: int
    kernel_version: str
    operating_system: str
    os_version: str
    architecture: str
    cgroup_version: str
    cgroup_driver: str
    ipv4_forwarding: bool
    memory_limit: bool
    swap_limit: bool
    cpu_cfs_period: bool
    cpu_cfs_quota: bool
    cpu_shares: bool
    cpuset: bool
    pids_limit: bool
    oom_kill_disable: bool


def detect_cgroup_version(root: Path = CGROUP_ROOT) -> str:
    """"2" on a unified hierarchy, "1" on legacy or hybrid (v1 controllers mounted)."""
    if (root / "cgroup.controllers").exists():
        return "2"
    return "1"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _mem_total() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _os_release() -> tuple[str, str]:
    fields: dict[str, str] = {}
    for line in _read(Path("/etc/os-release")).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value.strip().strip('"')
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def read_host_facts(root: Path = CGROUP_ROOT) -> HostFacts:
    version = detect_cgroup_version(root)
    if version == "2":
        controllers = set(_read(root / "cgroup.controllers").split())
        memory = "memory" in controllers
        cpu = "cpu" in controllers
        swap = memory
        cpuset = "cpuset" in controllers
        pids = "pids" in controllers
        oom_kill_disable = False
    else:
        memory = (root / "memory").is_dir()
        cpu = (root / "cpu").is_dir()
        swap = (root / "memory" / "memory.memsw.limit_in_bytes").exists()
        cpuset = (root / "cpuset").is_dir()
        pids = (root / "pids").is_dir()
        oom_kill_disable = (root / "memory" / "memory.oom_control").exists()
    pretty, os_version = _os_release()
    return HostFacts(
        name=socket.gethostname(),
        ncpu=os.cpu_count() or 1,
        mem_total=_mem_total(),
        kernel_version=platform.release(),
        operating_system=pretty,
        os_version=os_version,
        architecture=platform.machine(),
        cgroup_version=version,
        cgroup_driver="cgroupfs",
        ipv4_forwarding=_read(Path("/proc/sys/net/ipv4/ip_forward")).strip() == "1",
        memory_limit=memory,
        swap_limit=swap,
        cpu_cfs_period=cpu,
        cpu_cfs_quota=cpu,
        cpu_shares=cpu,
        cpuset=cpuset,
        pids_limit=pids,
        oom_kill_disable=oom_kill_disable,
    )
