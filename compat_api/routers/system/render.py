"""Engine facts -> the JSON shapes of /version and /info (v1.50 spec), per API version."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compat_api.adjustments import adjust_response
from compat_api.versions import ENGINE_VERSION, MAX_API_VERSION, MIN_API_VERSION, APIVersion
from runtime.engine import Engine
from runtime.process.client import SUPERVISOR_ARGS
from runtime.storage.status import overlay2_status
from runtime.timefmt import rfc3339_nano

PYDOCKERD_VERSION = "0.1.0"
GO_VERSION = f"python{platform.python_version()}"
# pydockerd runs from source: there is no build, so no build time. dockerd's is set at link
# time and empty otherwise (then /version omits it, and the Engine component says "").
BUILD_TIME = ""
# The containers' runtime name (HostConfig.Runtime defaults to it, as in dockerd); what
# runs under that name is pydockerd's supervisor, started with this interpreter.
DEFAULT_RUNTIME = "runc"


@functools.cache
def source_commit() -> str:
    """The commit of the git checkout pydockerd runs from; "" for a copy that is not one
    (an installed wheel), which dockerd's /version then omits, as for an unstamped build."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def render_version(engine: Engine) -> dict[str, Any]:
    kernel = engine.host.kernel_version
    experimental = "true" if engine.config.experimental else "false"
    return {
        "Platform": {"Name": "pydockerd"},
        "Components": [
            {
                "Name": "Engine",
                "Version": ENGINE_VERSION,
                "Details": {
                    "ApiVersion": str(MAX_API_VERSION),
                    "Arch": _arch(),
                    "BuildTime": BUILD_TIME,
                    "Experimental": experimental,
                    "GitCommit": source_commit(),
                    "GoVersion": GO_VERSION,
                    "KernelVersion": kernel,
                    "MinAPIVersion": str(MIN_API_VERSION),
                    "Os": "linux",
                },
            },
            {
                "Name": "pydockerd",
                "Version": PYDOCKERD_VERSION,
                "Details": {"Python": platform.python_version()},
            },
        ],
        "Version": ENGINE_VERSION,
        "ApiVersion": str(MAX_API_VERSION),
        "MinAPIVersion": str(MIN_API_VERSION),
        **({"GitCommit": source_commit()} if source_commit() else {}),
        "GoVersion": GO_VERSION,
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": kernel,
        **({"BuildTime": BUILD_TIME} if BUILD_TIME else {}),
    }


def _registry_config(engine: Engine) -> dict[str, Any]:
    mirrors = list(engine.config.registry_mirrors)
    index_configs: dict[str, Any] = {
        "docker.io": {"Mirrors": mirrors, "Name": "docker.io", "Official": True, "Secure": True},
    }
    cidrs = ["::1/128", "127.0.0.0/8"]
    if engine.images is not None:
        cidrs = engine.images.registries.insecure_cidrs
        for name in engine.images.registries.insecure_names:
            index_configs[name] = {"Mirrors": [], "Name": name, "Official": False, "Secure": False}
    return {"IndexConfigs": index_configs, "InsecureRegistryCIDRs": cidrs, "Mirrors": mirrors}


def _local_rfc3339_now() -> str:
    return rfc3339_nano(time.time_ns())


def render_info(engine: Engine, version: APIVersion, *, open_fds: int, listeners: int) -> dict[str, Any]:
    host = engine.host
    inventory = engine.inventory()
    config = engine.config
    info: dict[str, Any] = {
        "ID": engine.engine_id,
        "Containers": inventory.containers,
        "ContainersRunning": inventory.running,
        "ContainersPaused": inventory.paused,
        "ContainersStopped": inventory.stopped,
        "Images": inventory.images,
        "Driver": "overlay2",
        "DriverStatus": [list(row) for row in overlay2_status(config.data_root)],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": ["json-file", "none"],
        },
        "MemoryLimit": host.memory_limit,
        "SwapLimit": host.swap_limit,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": host.cpu_cfs_period,
        "CpuCfsQuota": host.cpu_cfs_quota,
        "CPUShares": host.cpu_shares,
        "CPUSet": host.cpuset,
        "PidsLimit": host.pids_limit,
        "IPv4Forwarding": host.ipv4_forwarding,
        "Debug": config.debug,
        "NFd": open_fds,
        "OomKillDisable": host.oom_kill_disable,
        "NGoroutines": 0,
        "SystemTime": _local_rfc3339_now(),
        "LoggingDriver": "json-file",
        "CgroupDriver": host.cgroup_driver,
        "CgroupVersion": host.cgroup_version,
        "NEventsListener": listeners,
        "KernelVersion": host.kernel_version,
        "OperatingSystem": host.operating_system,
        "OSVersion": host.os_version,
        "OSType": "linux",
        "Architecture": host.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(engine),
        "NCPU": host.ncpu,
        "MemTotal": host.mem_total,
        "GenericResources": None,
        "DockerRootDir": str(config.data_root),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": host.name,
        "Labels": list(config.labels),
        "ExperimentalBuild": config.experimental,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {DEFAULT_RUNTIME: {"path": sys.executable, "runtimeArgs": list(SUPERVISOR_ARGS),
                                       "status": {}}},
        "DefaultRuntime": DEFAULT_RUNTIME,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": config.live_restore,
        "Isolation": "",
        "InitBinary": engine.init_binary.name,
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": engine.init_binary.commit},
        # Containers get Docker's default seccomp profile unless told otherwise (dockerd's
        # "profile=" names the daemon's default: the built-in one).
        "SecurityOptions": ["name=seccomp,profile=builtin"]
        + (["name=cgroupns"] if host.cgroup_version == "2" else []),
        "CDISpecDirs": [],
        "Warnings": None,
    }
    if engine.networking is not None:
        info["FirewallBackend"] = {"Driver": engine.networking.firewall.backend}
    return adjust_response("SystemInfo", version, info)
