"""The daemon's configuration as the engine sees it (already merged from flags and daemon.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_ROOT = Path("/var/lib/pydockerd")
DEFAULT_EXEC_ROOT = Path("/run/pydockerd")
DEFAULT_BRIDGE = "docker0"
DEFAULT_BIP = "172.17.0.1/16"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    data_root: Path = DEFAULT_DATA_ROOT
    exec_root: Path = DEFAULT_EXEC_ROOT
    bridge: str = DEFAULT_BRIDGE
    bip: str = DEFAULT_BIP
    # default bridge IPv6 (dockerd's --ipv6 / --fixed-cidr-v6)
    ipv6: bool = False
    fixed_cidr_v6: str = ""
    cgroup_parent: str = "pydockerd"
    debug: bool = False
    experimental: bool = False
    labels: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    hosts: tuple[str, ...] = field(default_factory=tuple)
    # keep containers running across a clean daemon stop (dockerd's --live-restore)
    live_restore: bool = False
    # "host" or "private"; "" = dockerd's default for the host's cgroup version
    default_cgroupns_mode: str = ""
    # "cgroupfs" or "systemd" (--exec-opt native.cgroupdriver); "" = dockerd's default
    cgroup_driver: str = ""
    # --init by default (dockerd's --init / "init"), and the binary (--init-path / "init-path")
    init: bool = False
    init_path: str = ""
