"""``docker stats``: one reading of a container's cgroup (v1 or v2), /proc/stat and its
network namespace, in the units dockerd reports.

CPU times are nanoseconds: cgroup v1 ``cpuacct.usage`` (+ ``usage_percpu``), user/system
from ``cpuacct.stat`` ticks; v2 ``cpu.stat`` microseconds. ``system_ns`` is the host total
from the first line of /proc/stat (user..softirq, idle included) converted from clock
ticks, which is what the CLI's CPU % divides by. Memory limits above the host's memory
are reported as the host's memory, as dockerd does.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.containers.freeze import cgroup_handle
from runtime.containers.model import Container
from runtime.containers.context import ContainerContext

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: dockerd collects once a second
INTERVAL = 1.0
V1_BLKIO_FILES = (
    ("io_service_bytes_recursive", "blkio.io_service_bytes_recursive",
     "blkio.throttle.io_service_bytes_recursive"),
    ("io_serviced_recursive", "blkio.io_serviced_recursive",
     "blkio.throttle.io_serviced_recursive"),
    ("io_queue_recursive", "blkio.io_queued_recursive", ""),
    ("io_service_time_recursive", "blkio.io_service_time_recursive", ""),
    ("io_wait_time_recursive", "blkio.io_wait_time_recursive", ""),
    ("io_merged_recursive", "blkio.io_merged_recursive", ""),
    ("io_time_recursive", "blkio.time_recursive", ""),
    ("sectors_recursive", "blkio.sectors_recursive", ""),
)
NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


@dataclass(frozen=True, slots=True)
class BlkioEntry:
    major: int
    minor: int
    op: str
    value: int


@dataclass(frozen=True, slots=True)
class CpuReading:
    total_ns: int = 0
    kernel_ns: int = 0
    user_ns: int = 0
    percpu_ns: tuple[int, ...] = ()
    system_ns: int = 0
    online_cpus: int = 0
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@dataclass(frozen=True, slots=True)
class MemoryReading:
    usage: int = 0
    max_usage: int = 0
    failcnt: int = 0
    limit: int = 0
    stats: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading. ``blkio`` maps dockerd's list names to entries (None: not reported on
    this cgroup version); ``networks`` is None when the container has no interfaces of
    its own (``none``/``host``)."""

    read_ns: int
    cpu: CpuReading
    memory: MemoryReading
    pids_current: int = 0
    pids_limit: int = 0
    blkio: Mapping[str, tuple[BlkioEntry, ...] | None] = field(
        default_factory=lambda: MappingProxyType({}))
    networks: Mapping[str, Mapping[str, int]] | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """What one stats message reports: ``sample`` (None for a container that is not
    running) and the ``previous`` sample (None: ``precpu_stats`` stays empty)."""

    container: Container
    sample: Sample | None
    previous: Sample | None


def _read(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _int(path: Path, default: int = 0) -> int:
    try:
        text = _read(path).strip()
    except OSError:
        return default
    if text == "max":
        return default
    try:
        return int(text)
    except ValueError:
        return default


def _keyed(path: Path) -> dict[str, int]:
    try:
        text = _read(path)
    except OSError:
        return {}
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def system_cpu_ns(proc_stat: str | None = None) -> int:
    """Host CPU time (all CPUs, idle included) in ns, from the ``cpu`` line of /proc/stat."""
    if proc_stat is None:
        proc_stat = _read(Path("/proc/stat"))
    for line in proc_stat.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            ticks = sum(int(p) for p in parts[1:8])
            return ticks * 1_000_000_000 // CLK_TCK
    return 0


def online_cpus() -> int:
    try:
        return int(os.sysconf("SC_NPROCESSORS_ONLN"))
    except (ValueError, OSError):
        return os.cpu_count() or 1


def host_memory() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def parse_v1_blkio(text: str) -> tuple[BlkioEntry, ...]:
    """``8:0 Read 4096`` lines (the ``Total`` line is dropped, as dockerd drops it)."""
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            if major.isdigit() and minor.isdigit() and parts[2].isdigit():
                entries.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
        elif len(parts) == 2 and ":" in parts[0] and parts[1].isdigit():
            major, _, minor = parts[0].partition(":")  # time_recursive / sectors: no op
            if major.isdigit() and minor.isdigit():
                entries.append(BlkioEntry(int(major), int(minor), "", int(parts[1])))
    return tuple(entries)


def parse_v2_io(text: str) -> tuple[tuple[BlkioEntry, ...], tuple[BlkioEntry, ...]]:
    """(bytes, ios) entries from ``io.stat`` (``8:0 rbytes=.. wbytes=.. rios=.. wios=..``)."""
    nbytes, ios = [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        if not (major.isdigit() and minor.isdigit()):
            continue
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        dev = (int(major), int(minor))
        nbytes += [BlkioEntry(*dev, "read", int(kv.get("rbytes", 0))),
                   BlkioEntry(*dev, "write", int(kv.get("wbytes", 0)))]
        ios += [BlkioEntry(*dev, "read", int(kv.get("rios", 0))),
                BlkioEntry(*dev, "write", int(kv.get("wios", 0)))]
    return tuple(nbytes), tuple(ios)


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev without the loopback device."""
    result: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        values = [int(v) for v in rest.split()]
        if len(values) < 16:
            continue
        picked = values[0:4] + values[8:12]
        result[name] = dict(zip(NET_FIELDS, picked))
    return result


def read_sample(cgroups: Any, handle: Any, pid: int, with_networks: bool) -> Sample:
    """One reading (blocking: run in a thread)."""
    now = time.time_ns()
    system = system_cpu_ns()
    cpus = online_cpus()
    machine = host_memory()
    networks = None
    if with_networks and pid:
        try:
            networks = parse_net_dev(_read(Path(f"/proc/{pid}/net/dev")))
        except OSError:
            networks = None
    if str(cgroups.version) == "2":
        d = Path(handle.dirs[0])
        cpu = _keyed(d / "cpu.stat")
        mem_stats = _keyed(d / "memory.stat")
        limit = _int(d / "memory.max", 0) or machine
        try:
            io_bytes, io_ops = parse_v2_io(_read(d / "io.stat"))
        except OSError:
            io_bytes, io_ops = (), ()
        return Sample(
            now,
            CpuReading(cpu.get("usage_usec", 0) * 1000, cpu.get("system_usec", 0) * 1000,
                       cpu.get("user_usec", 0) * 1000, (), system, cpus,
                       cpu.get("nr_periods", 0), cpu.get("nr_throttled", 0),
                       cpu.get("throttled_usec", 0) * 1000),
            MemoryReading(_int(d / "memory.current"), 0, 0, min(limit, machine) if machine
                          else limit, MappingProxyType(mem_stats)),
            _int(d / "pids.current"), _int(d / "pids.max", 0),
            MappingProxyType({"io_service_bytes_recursive": io_bytes or None,
                              "io_serviced_recursive": io_ops or None}),
            networks,
        )
    acct = cgroups.controller_dir(handle, "cpuacct")
    cpu_dir = cgroups.controller_dir(handle, "cpu")
    mem = cgroups.controller_dir(handle, "memory")
    pids = cgroups.controller_dir(handle, "pids")
    blkio = cgroups.controller_dir(handle, "blkio")
    percpu: tuple[int, ...] = ()
    ticks: dict[str, int] = {}
    total = 0
    if acct is not None:
        total = _int(acct / "cpuacct.usage")
        try:
            percpu = tuple(int(v) for v in _read(acct / "cpuacct.usage_percpu").split())
        except OSError:
            percpu = ()
        ticks = _keyed(acct / "cpuacct.stat")
    throttle = _keyed(cpu_dir / "cpu.stat") if cpu_dir is not None else {}
    cpu_reading = CpuReading(
        total, ticks.get("system", 0) * 1_000_000_000 // CLK_TCK,
        ticks.get("user", 0) * 1_000_000_000 // CLK_TCK, percpu, system, cpus,
        throttle.get("nr_periods", 0), throttle.get("nr_throttled", 0),
        throttle.get("throttled_time", 0))
    memory = MemoryReading()
    if mem is not None:
        limit = _int(mem / "memory.limit_in_bytes")
        memory = MemoryReading(
            _int(mem / "memory.usage_in_bytes"), _int(mem / "memory.max_usage_in_bytes"),
            _int(mem / "memory.failcnt"), min(limit, machine) if machine else limit,
            MappingProxyType(_keyed(mem / "memory.stat")))
    lists: dict[str, tuple[BlkioEntry, ...] | None] = {}
    for key, name, fallback in V1_BLKIO_FILES:
        entries: tuple[BlkioEntry, ...] = ()
        if blkio is not None:
            for candidate in (name, fallback):
                if not candidate:
                    continue
                try:
                    entries = parse_v1_blkio(_read(blkio / candidate))
                except OSError:
                    continue
                if entries:
                    break
        lists[key] = entries
    return Sample(now, cpu_reading, memory,
                  _int(pids / "pids.current") if pids is not None else 0,
                  _int(pids / "pids.max", 0) if pids is not None else 0,
                  MappingProxyType(lists), networks)


def _has_own_network(container: Container) -> bool:
    mode = container.host_config.network_mode
    return mode not in ("none", "host") and not container.config.network_disabled


async def _sample(ctx: ContainerContext, container: Container) -> Sample | None:
    state = container.state
    if not state.running or ctx.cgroups is None:
        return None
    try:
        handle = cgroup_handle(ctx, container)
        return await asyncio.to_thread(read_sample, ctx.cgroups, handle, state.pid,
                                       _has_own_network(container))
    except OSError:
        return None  # exited between the check and the reading


async def frames(ctx: ContainerContext, ref: str, stream: bool,
                 one_shot: bool) -> AsyncIterator[Frame]:
    """The frames of ``GET /stats``. The container is looked up at once (404 before any
    byte is sent). Without ``stream`` and ``one_shot`` the single frame carries two samples
    ``INTERVAL`` apart, so ``precpu_stats`` is real (dockerd waits for two as well)."""
    container = ctx.get(ref)

    async def generate() -> AsyncIterator[Frame]:
        if not stream:
            first = await _sample(ctx, container)
            if one_shot or first is None:
                yield Frame(container, first, None)
                return
            await asyncio.sleep(INTERVAL)
            second = await _sample(ctx, container)
            yield Frame(container, second, first if second is not None else None)
            return
        previous: Sample | None = None
        while True:
            current = await _sample(ctx, container)
            yield Frame(container, current, previous)
            previous = current
            if ctx.store.find(container.id) is None:
                return  # removed: nothing more to report
            await asyncio.sleep(INTERVAL)

    return generate()


__all__ = ["Sample", "CpuReading", "MemoryReading", "BlkioEntry", "Frame", "frames",
           "read_sample", "system_cpu_ns", "parse_v1_blkio", "parse_v2_io", "parse_net_dev"]
