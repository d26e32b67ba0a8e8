"""``types.StatsResponse`` JSON from stats frames (dockerd's field order and omitempty rules)."""

from __future__ import annotations

from typing import Any

from runtime.containers.stats import BlkioEntry, Frame, Sample
from runtime.timefmt import ZERO_TIME, rfc3339_nano

V1_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
                 "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
                 "io_time_recursive", "sectors_recursive")


def _entries(entries: tuple[BlkioEntry, ...] | None) -> list[dict[str, Any]] | None:
    if entries is None:
        return None
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in entries]


def _cpu(sample: Sample | None) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                              "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    cpu = sample.cpu
    usage: dict[str, Any] = {"total_usage": cpu.total_ns}
    if cpu.percpu_ns:
        usage["percpu_usage"] = list(cpu.percpu_ns)
    usage["usage_in_kernelmode"] = cpu.kernel_ns
    usage["usage_in_usermode"] = cpu.user_ns
    out: dict[str, Any] = {"cpu_usage": usage}
    if cpu.system_ns:
        out["system_cpu_usage"] = cpu.system_ns
    if cpu.online_cpus:
        out["online_cpus"] = cpu.online_cpus
    out["throttling_data"] = {"periods": cpu.periods, "throttled_periods": cpu.throttled_periods,
                              "throttled_time": cpu.throttled_ns}
    return out


def _memory(sample: Sample | None) -> dict[str, Any]:
    if sample is None:
        return {}
    mem = sample.memory
    out: dict[str, Any] = {}
    if mem.usage:
        out["usage"] = mem.usage
    if mem.max_usage:
        out["max_usage"] = mem.max_usage
    if mem.stats:
        out["stats"] = dict(sorted(mem.stats.items()))  # Go marshals maps sorted
    if mem.failcnt:
        out["failcnt"] = mem.failcnt
    if mem.limit:
        out["limit"] = mem.limit
    return out


def render_stats(frame: Frame) -> dict[str, Any]:
    sample, previous = frame.sample, frame.previous
    pids: dict[str, int] = {}
    if sample is not None:
        if sample.pids_current:
            pids["current"] = sample.pids_current
        if sample.pids_limit:
            pids["limit"] = sample.pids_limit
    if sample is None:
        blkio: dict[str, Any] = {key: None for key in V1_BLKIO_KEYS}
    else:
        blkio = {key: _entries(sample.blkio.get(key)) for key in V1_BLKIO_KEYS}
    body: dict[str, Any] = {
        "read": rfc3339_nano(sample.read_ns) if sample is not None else ZERO_TIME,
        "preread": rfc3339_nano(previous.read_ns) if previous is not None else ZERO_TIME,
        "pids_stats": pids,
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample),
        "precpu_stats": _cpu(previous),
        "memory_stats": _memory(sample),
        "name": frame.container.name,
        "id": frame.container.id,
    }
    if sample is not None and sample.networks:
        body["networks"] = {name: dict(values) for name, values in sample.networks.items()}
    return body


__all__ = ["render_stats"]
