"""dockerd-compatible flags and daemon.json, merged into one DaemonOptions value.

As in dockerd: a key set both by a flag and in the configuration file is an error, an
unknown key in the file is an error, and flags otherwise win over built-in defaults.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import DEFAULT_BIP, DEFAULT_BRIDGE, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_CONFIG_FILE = Path("/etc/pydockerd/daemon.json")
DEFAULT_GROUP = "docker"

# daemon.json key -> argparse destination
_FILE_KEYS: dict[str, str] = {
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "group": "group",
    "log-level": "log_level",
    "debug": "debug",
    "tls": "tls",
    "tlsverify": "tlsverify",
    "tlscacert": "tlscacert",
    "tlscert": "tlscert",
    "tlskey": "tlskey",
    "bridge": "bridge",
    "bip": "bip",
    "ipv6": "ipv6",
    "fixed-cidr-v6": "fixed_cidr_v6",
    "experimental": "experimental",
    "labels": "labels",
    "insecure-registries": "insecure_registries",
    "registry-mirrors": "registry_mirrors",
    "cgroup-parent": "cgroup_parent",
    "live-restore": "live_restore",
    "default-cgroupns-mode": "default_cgroupns_mode",
    "exec-opts": "exec_opts",
    "init": "init",
    "init-path": "init_path",
    "dashboard": "dashboard",
}

_DEFAULTS: dict[str, Any] = {
    "hosts": [],
    "data_root": str(DEFAULT_DATA_ROOT),
    "exec_root": str(DEFAULT_EXEC_ROOT),
    "pidfile": None,
    "group": DEFAULT_GROUP,
    "log_level": "info",
    "debug": False,
    "tls": None,
    "tlsverify": False,
    "tlscacert": None,
    "tlscert": None,
    "tlskey": None,
    "bridge": DEFAULT_BRIDGE,
    "bip": DEFAULT_BIP,
    "ipv6": False,
    "fixed_cidr_v6": "",
    "experimental": False,
    "labels": [],
    "insecure_registries": [],
    "registry_mirrors": [],
    "cgroup_parent": "pydockerd",
    "live_restore": False,
    "default_cgroupns_mode": "",
    "exec_opts": [],
    "init": False,
    "init_path": "",
    "dashboard": None,
}


class OptionsError(Exception):
    """Invalid flags or configuration file; the daemon exits with this message."""


def _fixed_cidr_v6(value: str) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.IPv6Network(value, strict=False))
    except ValueError:
        raise OptionsError(f"invalid fixed-cidr-v6: {value}") from None


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    hosts: tuple[str, ...]
    data_root: Path
    exec_root: Path
    pidfile: Path | None
    group: str
    log_level: str
    debug: bool
    tls: bool | None
    tlsverify: bool
    tlscacert: str | None
    tlscert: str | None
    tlskey: str | None
    bridge: str
    bip: str
    experimental: bool
    labels: tuple[str, ...]
    insecure_registries: tuple[str, ...]
    registry_mirrors: tuple[str, ...]
    cgroup_parent: str
    live_restore: bool = False
    default_cgroupns_mode: str = ""
    cgroup_driver: str = ""
    init: bool = False
    init_path: str = ""
    dashboard: str | None = None  # HOST:PORT of the web dashboard, served by the daemon
    ipv6: bool = False
    fixed_cidr_v6: str = ""


def _bool_flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true", "yes"):
        return True
    if lowered in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _file_bool(key: str, value: Any) -> bool:
    """A boolean daemon.json value (flags are already parsed); dockerd refuses other types."""
    if not isinstance(value, bool):
        raise OptionsError(f"invalid value for {key}: {value!r} is not a boolean")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pydockerd",
        description="A Docker Engine written in Python. Serves the Docker Engine API (up to 1.50).",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("-H", "--host", dest="hosts", action="append", metavar="HOST",
                   help=f"daemon socket(s) to listen on: unix://PATH, tcp://HOST:PORT, fd:// "
                        f"(repeatable; default {DEFAULT_HOST}). A TCP listener on a non-loopback "
                        f"address is refused without --tlsverify unless --tls=false is given "
                        f"explicitly (unauthenticated root access to the host!)")
    p.add_argument("--data-root", dest="data_root", help=f"root of persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", dest="exec_root", help=f"root of runtime state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path of the daemon's PID file")
    p.add_argument("--config-file", dest="config_file",
                   help=f"daemon configuration file (default {DEFAULT_CONFIG_FILE})")
    p.add_argument("-G", "--group", dest="group",
                   help=f"group owning the unix socket(s) (default {DEFAULT_GROUP}; root if absent)")
    p.add_argument("-l", "--log-level", dest="log_level",
                   choices=["debug", "info", "warn", "error", "fatal"], help="logging level (default info)")
    p.add_argument("-D", "--debug", dest="debug", action="store_const", const=True, help="enable debug mode")
    p.add_argument("--tls", dest="tls", nargs="?", const=True, type=_bool_flag,
                   help="use TLS; implied by --tlsverify. --tls=false explicitly allows plain TCP")
    p.add_argument("--tlsverify", dest="tlsverify", nargs="?", const=True, type=_bool_flag,
                   help="use TLS and verify the remote (client certificates)")
    p.add_argument("--tlscacert", dest="tlscacert", help="trust certs signed only by this CA")
    p.add_argument("--tlscert", dest="tlscert", help="path to TLS certificate file")
    p.add_argument("--tlskey", dest="tlskey", help="path to TLS key file")
    p.add_argument("-b", "--bridge", dest="bridge", help=f"default bridge name (default {DEFAULT_BRIDGE})")
    p.add_argument("--bip", dest="bip", help=f"default bridge address, CIDR (default {DEFAULT_BIP})")
    p.add_argument("--ipv6", dest="ipv6", nargs="?", const=True, type=_bool_flag,
                   help="enable IPv6 on the default bridge")
    p.add_argument("--fixed-cidr-v6", dest="fixed_cidr_v6",
                   help="IPv6 subnet of the default bridge (with --ipv6; a random ULA /64 otherwise)")
    p.add_argument("--experimental", dest="experimental", action="store_const", const=True,
                   help="enable experimental features")
    p.add_argument("--label", dest="labels", action="append", help="engine label key=value (repeatable)")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append",
                   help="registry reachable over plain HTTP (repeatable)")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append",
                   help="preferred Docker registry mirror (repeatable)")
    p.add_argument("--cgroup-parent", dest="cgroup_parent", help="parent cgroup of all containers")
    p.add_argument("--live-restore", dest="live_restore", nargs="?", const=True, type=_bool_flag,
                   help="keep containers running while the daemon is stopped, and re-adopt them "
                        "when it starts again")
    p.add_argument("--exec-opt", dest="exec_opts", action="append",
                   help="runtime execution option, e.g. native.cgroupdriver=systemd (repeatable)")
    p.add_argument("--default-cgroupns-mode", dest="default_cgroupns_mode",
                   help='default cgroup namespace of containers, "host" or "private" '
                        "(default: private on cgroup v2, host on v1)")
    p.add_argument("--init", dest="init", nargs="?", const=True, type=_bool_flag,
                   help="run an init (docker-init, i.e. tini) as PID 1 of every container "
                        "that does not say otherwise")
    p.add_argument("--init-path", dest="init_path",
                   help="path to the docker-init binary (default: docker-init, else Debian's "
                        "tini-static)")
    p.add_argument("--dashboard", dest="dashboard", metavar="ADDR",
                   help="also serve the web dashboard on ADDR (HOST:PORT, e.g. 127.0.0.1:2380), a client "
                        "of this daemon's socket; the URL to open (with its access token) is logged")
    return p


def _load_config_file(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if explicit:
            raise OptionsError(f"unable to configure the Docker daemon with file {path}: "
                               f"open {path}: no such file or directory") from None
        return {}
    except OSError as exc:
        raise OptionsError(f"unable to configure the Docker daemon with file {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionsError(f"unable to configure the Docker daemon with file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise OptionsError(f"unable to configure the Docker daemon with file {path}: not a JSON object")
    unknown = sorted(k for k in data if k not in _FILE_KEYS)
    if unknown:
        raise OptionsError(
            "the following directives don't match any configuration option: " + ", ".join(unknown)
        )
    return data


def parse_options(argv: Sequence[str]) -> DaemonOptions:
    parser = build_parser()
    flags = vars(parser.parse_args(list(argv)))
    config_file = flags.pop("config_file", None)
    file_values = _load_config_file(Path(config_file or DEFAULT_CONFIG_FILE), explicit=config_file is not None)
    conflicts = []
    merged = dict(_DEFAULTS)
    for key, value in file_values.items():
        dest = _FILE_KEYS[key]
        if dest in flags:
            conflicts.append(f"{key}: (from flag: {flags[dest]}, from file: {value})")
        merged[dest] = value
    if conflicts:
        raise OptionsError(
            "the following directives are specified both as a flag and in the configuration file: "
            + ", ".join(conflicts)
        )
    merged.update(flags)
    if merged["debug"]:
        merged["log_level"] = "debug"
    hosts = tuple(merged["hosts"]) or (DEFAULT_HOST,)
    return DaemonOptions(
        hosts=hosts,
        data_root=Path(merged["data_root"]).absolute(),
        exec_root=Path(merged["exec_root"]).absolute(),
        pidfile=Path(merged["pidfile"]).absolute() if merged["pidfile"] else None,
        group=merged["group"],
        log_level=merged["log_level"],
        debug=bool(merged["debug"]),
        tls=merged["tls"],
        tlsverify=bool(merged["tlsverify"]),
        tlscacert=merged["tlscacert"],
        tlscert=merged["tlscert"],
        tlskey=merged["tlskey"],
        bridge=merged["bridge"],
        bip=merged["bip"],
        ipv6=_file_bool("ipv6", merged["ipv6"]),
        fixed_cidr_v6=_fixed_cidr_v6(merged["fixed_cidr_v6"] or ""),
        experimental=bool(merged["experimental"]),
        labels=tuple(merged["labels"]),
        insecure_registries=tuple(merged["insecure_registries"]),
        registry_mirrors=tuple(merged["registry_mirrors"]),
        cgroup_parent=merged["cgroup_parent"],
        live_restore=_file_bool("live-restore", merged["live_restore"]),
        default_cgroupns_mode=_cgroupns_mode(merged["default_cgroupns_mode"]),
        cgroup_driver=_cgroup_driver(merged["exec_opts"]),
        init=_file_bool("init", merged["init"]),
        init_path=str(merged["init_path"] or ""),
        dashboard=merged["dashboard"] or None,
    )


def _cgroup_driver(exec_opts: Any) -> str:
    """The cgroup driver from exec-opts (dockerd's only option of ours), "" when unset."""
    driver = ""
    for opt in exec_opts or ():
        key, _sep, value = str(opt).partition("=")
        if key.strip().lower() != "native.cgroupdriver":
            raise OptionsError(f"unknown option {key.strip()}")
        if value.strip() not in ("systemd", "cgroupfs"):
            raise OptionsError(f"native.cgroupdriver option {value.strip()} not supported")
        driver = value.strip()
    return driver


def _cgroupns_mode(value: Any) -> str:
    if value not in ("", "host", "private"):
        raise OptionsError(f'Default cgroup namespace mode ({value}) is invalid. '
                           'Use "host" or "private".')
    return str(value)
