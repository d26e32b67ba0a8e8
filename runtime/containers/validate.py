"""dockerd's checks of a HostConfig at create and update (``verifyContainerSettings`` and
``verifyPlatformContainerResources``), with its messages; every failure is InvalidParameter.

Types and integer ranges are the decoder's business (runtime.containers.codec): what
reaches here is well-typed, and these are the rules on the values.
"""

from __future__ import annotations

import os

from runtime.containers.model import HostConfig
from runtime.errors import InvalidParameter
from runtime.logs.driver import validate_log_config

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
MIN_MEMORY = 6 * 1024 * 1024  # linuxMinMemory


def validate_host_config(host: HostConfig, *, update: bool = False) -> None:
    """Refuse what dockerd refuses; ``update``: the request of ``docker update`` (only
    the fields it sets are meant, so some create-time rules do not apply)."""
    _validate_restart_policy(host)
    if not update:
        log_config = host.log_config
        validate_log_config(log_config.type or "json-file", log_config.config)
    validate_resources(host, update=update)
    if host.shm_size < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    if host.oom_score_adj < -1000 or host.oom_score_adj > 1000:
        raise InvalidParameter("Invalid value %d, range for oom score adj is [-1000, 1000]"
                               % host.oom_score_adj)
    # user-defined network names are checked by the network service (404, as dockerd)
    for field_name, value in (("IpcMode", host.ipc_mode), ("PidMode", host.pid_mode)):
        if value and value not in ("host", "private", "shareable", "none") and not value.startswith(
                "container:"):
            raise InvalidParameter(f"invalid {field_name}: {value}")
    if host.cgroupns_mode not in ("", "host", "private"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {host.cgroupns_mode}")


def _validate_restart_policy(host: HostConfig) -> None:
    policy = host.restart_policy
    if policy.name and policy.name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{policy.name}'; use one "
                               "of 'no', 'always', 'on-failure', or 'unless-stopped'")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used "
                               "with 'on-failure'")
    if policy.maximum_retry_count < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if host.auto_remove and policy.name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def validate_resources(host: HostConfig, *, update: bool = False) -> None:
    """``verifyPlatformContainerResources`` on a host whose kernel supports every limit."""
    memory, swap, reservation = host.memory, host.memory_swap, host.memory_reservation
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    swappiness = host.memory_swappiness
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if reservation > 0 and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    if host.nano_cpus > 0 and host.cpu_period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if host.nano_cpus > 0 and host.cpu_quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    cpus = os.cpu_count() or 1
    if host.nano_cpus != 0 and not 0 <= host.nano_cpus <= cpus * 1_000_000_000:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")
    if host.cpu_period != 0 and not 1000 <= host.cpu_period <= 1_000_000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < host.cpu_quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if host.blkio_weight > 0 and not 10 <= host.blkio_weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if host.io_maximum_bandwidth != 0 or host.io_maximum_iops != 0:
        raise InvalidParameter("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")


__all__ = ["RESTART_POLICIES", "MIN_MEMORY", "validate_host_config", "validate_resources"]
