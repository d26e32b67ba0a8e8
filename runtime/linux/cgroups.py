"""Per-container cgroups (v1 hybrid and v2 unified), configured by the daemon before start.

Interface first; implementation follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resources:
    """HostConfig resource limits, in Docker's units (0 / None = unset).

    memory, memory_swap (-1 = unlimited swap), memory_reservation: bytes; nano_cpus: 1e-9
    CPUs; cpu_shares: relative weight; cpu_quota/cpu_period: microseconds; pids_limit:
    None or <= 0 = unlimited; blkio_weight: 10..1000.
    """

    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    blkio_weight: int = 0


@dataclass(frozen=True, slots=True)
class CgroupHandle:
    """The container's cgroup: ``dirs`` are the absolute directories the process joins."""

    container_id: str
    dirs: tuple[str, ...]
