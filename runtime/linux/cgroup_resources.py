"""Container resource limits and how they are written to cgroups, v1 and v2, as runc
writes them for dockerd's HostConfig (``--cpus`` -> ``cfs_quota_us`` over a 100000 us
period, and so on); like crun's ``cgroup-resources.c``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.linux.cgroupfs import read_value, write_value

# runc's AllowedDevices plus moby's defaults (deny fuse 10:229 by not listing it).
DEFAULT_DEVICE_RULES: tuple[str, ...] = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)
PRIVILEGED_DEVICE_RULES: tuple[str, ...] = ("a *:* rwm",)
CPU_PERIOD_FOR_NANO_CPUS = 100000


@dataclass(frozen=True, slots=True)
class Resources:
    """HostConfig resource limits, in Docker's units (0 / None = unset).

    memory, memory_swap (total memory+swap, -1 = unlimited swap), memory_reservation:
    bytes; nano_cpus: 1e-9 CPUs; cpu_shares: relative weight; cpu_quota/cpu_period:
    microseconds; pids_limit: None or <= 0 = unlimited; blkio_weight: 10..1000.
    ``device_rules`` are devices-cgroup allow lines (``PRIVILEGED_DEVICE_RULES`` for
    --privileged): v1's devices controller, or an eBPF device program on v2.
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
    device_rules: tuple[str, ...] = DEFAULT_DEVICE_RULES


def cpu_quota_period(r: Resources) -> tuple[int, int]:
    """(quota, period) in microseconds; quota 0 = unlimited."""
    if r.nano_cpus:
        period = CPU_PERIOD_FOR_NANO_CPUS
        return r.nano_cpus * period // 1_000_000_000, period
    return r.cpu_quota, r.cpu_period


def shares_to_weight(shares: int) -> int:
    """runc's cpu.shares -> cgroup v2 cpu.weight conversion."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def cpuset_ancestors(mountpoint: Path, path: Path) -> None:
    """A v1 cpuset cgroup takes no tasks until cpus and mems are set: copy them down."""
    current = mountpoint
    for part in path.relative_to(mountpoint).parts:
        child = current / part
        child.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read_value(child / name):
                write_value(child / name, read_value(current / name))
        current = child


def set_devices_v1(devices: Path | None, rules: tuple[str, ...]) -> None:
    """The v1 devices controller's allow list (``devices``: the container's directory)."""
    if devices is None:
        return
    if rules == PRIVILEGED_DEVICE_RULES:
        write_value(devices / "devices.allow", "a *:* rwm")
        return
    write_value(devices / "devices.deny", "a")
    for rule in rules:
        write_value(devices / "devices.allow", rule)


def update_v1(dir_of: Callable[[str], Path | None], r: Resources) -> None:
    """Write ``r`` to the container's v1 directories (``dir_of(controller)``)."""
    mem = dir_of("memory")
    if mem is not None:
        limit = r.memory if r.memory > 0 else -1
        swap = r.memory_swap if r.memory_swap != 0 else (-1 if r.memory <= 0 else 0)
        memsw = mem / "memory.memsw.limit_in_bytes"
        has_swap = memsw.exists()
        # memsw must stay >= limit at every moment: order the two writes accordingly.
        try:
            write_value(mem / "memory.limit_in_bytes", limit)
            if has_swap and swap:
                write_value(memsw, swap)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not has_swap:
                raise
            write_value(memsw, swap)
            write_value(mem / "memory.limit_in_bytes", limit)
        if r.memory_reservation:
            write_value(mem / "memory.soft_limit_in_bytes", r.memory_reservation)
    cpu = dir_of("cpu")
    if cpu is not None:
        if r.cpu_shares:
            write_value(cpu / "cpu.shares", r.cpu_shares)
        quota, period = cpu_quota_period(r)
        if period:
            write_value(cpu / "cpu.cfs_period_us", period)
        if quota:
            write_value(cpu / "cpu.cfs_quota_us", quota)
    cpuset = dir_of("cpuset")
    if cpuset is not None:
        parent = cpuset.parent
        write_value(cpuset / "cpuset.cpus", r.cpuset_cpus or read_value(parent / "cpuset.cpus"))
        write_value(cpuset / "cpuset.mems", r.cpuset_mems or read_value(parent / "cpuset.mems"))
    pids = dir_of("pids")
    if pids is not None:
        write_value(pids / "pids.max", r.pids_limit if r.pids_limit and r.pids_limit > 0 else "max")
    blkio = dir_of("blkio")
    if blkio is not None and r.blkio_weight:
        for name in ("blkio.weight", "blkio.bfq.weight"):
            if (blkio / name).exists():
                write_value(blkio / name, r.blkio_weight)
                break


def enable_v2_controllers(root: Path, path: Path) -> None:
    """Delegate the controllers down from ``root`` to ``path``'s parent, creating the
    directories in between."""
    current = root
    for part in path.relative_to(root).parts:
        try:
            available = set(read_value(current / "cgroup.controllers").split())
        except FileNotFoundError:
            available = set()
        wanted = [c for c in ("cpuset", "cpu", "io", "memory", "pids") if c in available]
        if wanted:
            try:
                write_value(current / "cgroup.subtree_control",
                            " ".join("+" + c for c in wanted))
            except OSError:
                # as runc: one by one, and a cgroup that holds processes (a relative
                # --cgroup-parent below the daemon's own) refuses them; go on without
                for c in wanted:
                    try:
                        write_value(current / "cgroup.subtree_control", "+" + c)
                    except OSError:
                        pass
        current = current / part
        if current != path:
            current.mkdir(exist_ok=True)


def update_v2(path: Path, r: Resources) -> None:
    """Write ``r`` to the container's cgroup2 directory."""
    try:
        enabled = {c.lstrip("+") for c in read_value(path.parent / "cgroup.subtree_control").split()}
    except FileNotFoundError:
        enabled = set()

    def reset(name: str) -> None:
        # an unset limit: "max" where the controller is enabled (runc skips unset ones)
        if name.partition(".")[0] in enabled:
            write_value(path / name, "max")

    if r.memory > 0:
        write_value(path / "memory.max", r.memory)
    else:
        reset("memory.max")
    if r.memory_swap == -1:
        write_value(path / "memory.swap.max", "max")
    elif r.memory_swap > 0 and r.memory > 0:
        write_value(path / "memory.swap.max", max(r.memory_swap - r.memory, 0))
    if r.memory_reservation:
        write_value(path / "memory.low", r.memory_reservation)
    quota, period = cpu_quota_period(r)
    if quota or period:
        write_value(path / "cpu.max", f"{quota if quota > 0 else 'max'} {period or 100000}")
    if r.cpu_shares:
        write_value(path / "cpu.weight", shares_to_weight(r.cpu_shares))
    if r.cpuset_cpus:
        write_value(path / "cpuset.cpus", r.cpuset_cpus)
    if r.cpuset_mems:
        write_value(path / "cpuset.mems", r.cpuset_mems)
    if r.pids_limit and r.pids_limit > 0:
        write_value(path / "pids.max", r.pids_limit)
    else:
        reset("pids.max")
    if r.blkio_weight:
        write_value(path / "io.weight", f"default {blkio_weight_to_io_weight(r.blkio_weight)}")


__all__ = ["DEFAULT_DEVICE_RULES", "PRIVILEGED_DEVICE_RULES", "CPU_PERIOD_FOR_NANO_CPUS", "Resources",
           "cpu_quota_period", "shares_to_weight", "blkio_weight_to_io_weight", "cpuset_ancestors",
           "set_devices_v1", "update_v1", "enable_v2_controllers", "update_v2"]
