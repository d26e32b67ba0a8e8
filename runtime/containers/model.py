"""The container record and its configuration, as domain values.

``ContainerConfig`` and ``HostConfig`` carry every field of Docker's ``Config`` and
``HostConfig`` (snake_case here; ``compat_api.convert.containers`` maps the wire names), so
inspect can render the full shape. Fields the engine does not interpret yet are kept as
opaque JSON values so they survive a round trip. ``None`` and empty are distinct where
Docker distinguishes them (``Env: null`` vs ``[]``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.containers.state import State
from runtime.errors import InvalidParameter

ID_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def new_id() -> str:
    """A random 64-hex container/exec ID that is not all digits (the CLI would read those
    as numbers in some places; dockerd rerolls such IDs too)."""
    while True:
        value = secrets.token_hex(32)
        if not value[:12].isdigit():
            return value


def validate_name(name: str) -> str:
    """Return ``name`` with its leading '/' (dockerd's canonical form) or raise."""
    if not NAME_RE.match(name):
        raise InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name if name.startswith("/") else "/" + name


@dataclass(frozen=True, slots=True)
class HealthConfig:
    test: tuple[str, ...] | None = None
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0
    start_interval: int = 0


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """Docker's container ``Config`` (portable settings, merged with the image's)."""

    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    healthcheck: HealthConfig | None = None
    args_escaped: bool = False
    image: str = ""
    volumes: tuple[str, ...] | None = None
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    network_disabled: bool = False
    mac_address: str = ""
    on_build: tuple[str, ...] | None = None
    labels: Mapping[str, str] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None
    shell: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LogConfig:
    type: str = ""
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class PortBinding:
    host_ip: str = ""
    host_port: str = ""


@dataclass(frozen=True, slots=True)
class Ulimit:
    name: str = ""
    soft: int = 0
    hard: int = 0


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    path_on_host: str = ""
    path_in_container: str = ""
    cgroup_permissions: str = ""


@dataclass(frozen=True, slots=True)
class BindOptions:
    propagation: str = ""
    non_recursive: bool = False
    create_mountpoint: bool = False
    read_only_non_recursive: bool = False
    read_only_force_recursive: bool = False


@dataclass(frozen=True, slots=True)
class TmpfsOptions:
    size_bytes: int = 0
    mode: int = 0
    options: tuple[tuple[str, ...], ...] | None = None


@dataclass(frozen=True, slots=True)
class MountRequest:
    """One entry of ``HostConfig.Mounts`` (``--mount``). Volume options stay opaque."""

    target: str = ""
    source: str = ""
    type: str = ""
    read_only: bool = False
    consistency: str = ""
    bind_options: BindOptions | None = None
    volume_options: Mapping[str, Any] | None = None
    image_options: Mapping[str, Any] | None = None
    tmpfs_options: TmpfsOptions | None = None


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Docker's ``HostConfig`` (host-specific settings), including the ``Resources`` fields."""

    # Resources
    cpu_shares: int = 0
    memory: int = 0
    cgroup_parent: str = ""
    blkio_weight: int = 0
    blkio_weight_device: tuple[Any, ...] | None = None
    blkio_device_read_bps: tuple[Any, ...] | None = None
    blkio_device_write_bps: tuple[Any, ...] | None = None
    blkio_device_read_iops: tuple[Any, ...] | None = None
    blkio_device_write_iops: tuple[Any, ...] | None = None
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_realtime_period: int = 0
    cpu_realtime_runtime: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    devices: tuple[DeviceMapping, ...] | None = None
    device_cgroup_rules: tuple[str, ...] | None = None
    device_requests: tuple[Any, ...] | None = None
    kernel_memory: int = 0
    kernel_memory_tcp: int = 0
    memory_reservation: int = 0
    memory_swap: int = 0
    memory_swappiness: int | None = None
    nano_cpus: int = 0
    oom_kill_disable: bool | None = None
    init: bool | None = None
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] | None = None
    cpu_count: int = 0
    cpu_percent: int = 0
    io_maximum_iops: int = 0
    io_maximum_bandwidth: int = 0
    # Host settings
    binds: tuple[str, ...] | None = None
    container_id_file: str = ""
    log_config: LogConfig = field(default_factory=LogConfig)
    network_mode: str = ""
    port_bindings: Mapping[str, tuple[PortBinding, ...] | None] | None = None
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    auto_remove: bool = False
    volume_driver: str = ""
    volumes_from: tuple[str, ...] | None = None
    mounts: tuple[MountRequest, ...] | None = None
    console_size: tuple[int, int] | None = None
    annotations: Mapping[str, str] | None = None
    cap_add: tuple[str, ...] | None = None
    cap_drop: tuple[str, ...] | None = None
    cgroupns_mode: str = ""
    dns: tuple[str, ...] | None = None
    dns_options: tuple[str, ...] | None = None
    dns_search: tuple[str, ...] | None = None
    extra_hosts: tuple[str, ...] | None = None
    group_add: tuple[str, ...] | None = None
    ipc_mode: str = ""
    cgroup: str = ""
    links: tuple[str, ...] | None = None
    oom_score_adj: int = 0
    pid_mode: str = ""
    privileged: bool = False
    publish_all_ports: bool = False
    readonly_rootfs: bool = False
    security_opt: tuple[str, ...] | None = None
    storage_opt: Mapping[str, str] | None = None
    tmpfs: Mapping[str, str] | None = None
    uts_mode: str = ""
    userns_mode: str = ""
    shm_size: int = 0
    sysctls: Mapping[str, str] | None = None
    runtime: str = ""
    isolation: str = ""
    masked_paths: tuple[str, ...] | None = None
    readonly_paths: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MountPoint:
    """A mount as inspect reports it (``Mounts``)."""

    type: str
    source: str
    destination: str
    mode: str = ""
    rw: bool = True
    propagation: str = ""
    name: str = ""
    driver: str = ""


@dataclass(frozen=True, slots=True)
class RwLayer:
    """The container's writable layer: overlay upper/work dirs and the image lowerdirs."""

    upperdir: str
    workdir: str
    lowerdirs: tuple[str, ...]
    layer_id: str = ""


@dataclass(slots=True)
class Container:
    """One container. Mutable: the service updates ``name``, ``state``, ``exec_ids``."""

    id: str
    name: str
    created_ns: int
    path: str
    args: tuple[str, ...]
    config: ContainerConfig
    host_config: HostConfig
    image_id: str
    root: Path
    state: State = field(default_factory=State)
    restart_count: int = 0
    driver: str = "overlay2"
    platform: str = "linux"
    rw_layer: RwLayer | None = None
    mount_points: tuple[MountPoint, ...] = ()
    exec_ids: list[str] = field(default_factory=list)
    # NetworkingConfig.EndpointsConfig as given (opaque to this package: the network
    # service owns its shape; see runtime.network.hooks)
    endpoints_config: dict[str, Any] = field(default_factory=dict)
    has_been_started: bool = False
    has_been_manually_stopped: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.id}-json.log"

    @property
    def hostname_path(self) -> Path:
        return self.root / "hostname"

    @property
    def hosts_path(self) -> Path:
        return self.root / "hosts"

    @property
    def resolv_conf_path(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def log_driver(self) -> str:
        return self.host_config.log_config.type or "json-file"

    def event_attributes(self, **extra: str) -> dict[str, str]:
        """``Actor.Attributes`` of a container event: labels, then image and name."""
        attrs = dict(self.config.labels or {})
        attrs["image"] = self.config.image
        attrs["name"] = self.name.lstrip("/")
        attrs.update(extra)
        return attrs


__all__ = [
    "ID_RE", "NAME_RE", "new_id", "validate_name", "HealthConfig", "ContainerConfig",
    "LogConfig", "RestartPolicy", "PortBinding", "Ulimit", "DeviceMapping", "BindOptions",
    "TmpfsOptions", "MountRequest", "HostConfig", "MountPoint", "RwLayer", "Container",
]
