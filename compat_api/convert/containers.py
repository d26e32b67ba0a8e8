"""Containers: Docker's wire JSON <-> runtime domain values, per API version.

Config and HostConfig are decoded and rendered generically from the domain dataclasses
(snake_case <-> PascalCase, plus the irregular names below), which keeps every field of
the spec round-tripping without a hand-written line per field. Docker's ``omitempty``
fields are left out when empty, exactly as dockerd's Go structs do.
"""

from __future__ import annotations

import base64
import shlex
import time
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from compat_api.adjustments import adjust_response
from compat_api.versions import APIVersion
from compat_api.wire.goshapes import EXEC_CREATE, check_body
from compat_api.wire.containers import (
    ContainerCreateResponse, ContainerState, ContainerSummary, ContainerWaitResponse,
    ExecInspectResponse, MountPoint as WireMountPoint,
)
from runtime.containers.attach import parse_detach_keys
from runtime.containers.codec import GoSchema, from_jsonable, json_kind, to_jsonable
from runtime.containers.execs import ExecConfig, ExecRecord
from runtime.containers.health import Health
from runtime.containers.links import canonical_link
from runtime.containers.model import (
    BindOptions, Container, ContainerConfig, DeviceMapping, HealthConfig, HostConfig, LogConfig,
    MountPoint, MountRequest, PortBinding, RestartPolicy, TmpfsOptions, Ulimit,
)
from runtime.containers.state import ExitStatus, State
from runtime.errors import InvalidParameter
from runtime.timefmt import rfc3339_nano

_T = TypeVar("_T")

_IRREGULAR = {
    "uts_mode": "UTSMode",
    "io_maximum_iops": "IOMaximumIOps",
    "io_maximum_bandwidth": "IOMaximumBandwidth",
    "blkio_device_read_iops": "BlkioDeviceReadIOps",
    "blkio_device_write_iops": "BlkioDeviceWriteIOps",
    "container_id_file": "ContainerIDFile",
    "kernel_memory_tcp": "KernelMemoryTCP",
    "rw": "RW",
}


def wire_name(cls: type, name: str) -> str:
    """The spec's field name for a domain field."""
    irregular = _IRREGULAR.get(name)
    if irregular is not None:
        return irregular
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


_SET_MAPS = ("ExposedPorts", "Volumes")


# How Go names what a create body decodes into (container.CreateRequest embeds Config, so
# Config's fields are reported as the request's own; Resources is embedded in HostConfig).
_CREATE_SCHEMA = GoSchema(
    structs={
        ContainerConfig: "container.CreateRequest", HostConfig: "container.HostConfig",
        HealthConfig: "container.HealthConfig", LogConfig: "container.LogConfig",
        RestartPolicy: "container.RestartPolicy", PortBinding: "nat.PortBinding",
        Ulimit: "*units.Ulimit", DeviceMapping: "container.DeviceMapping", MountRequest: "mount.Mount",
        BindOptions: "mount.BindOptions", TmpfsOptions: "mount.TmpfsOptions",
    },
    fields={
        (ContainerConfig, "cmd"): "string", (ContainerConfig, "entrypoint"): "string",
        (ContainerConfig, "shell"): "string", (ContainerConfig, "stop_timeout"): "int",
        (ContainerConfig, "exposed_ports"): "nat.PortSet", (ContainerConfig, "volumes"): "map[string]struct {}",
        (HostConfig, "blkio_weight"): "uint16", (HostConfig, "io_maximum_iops"): "uint64",
        (HostConfig, "io_maximum_bandwidth"): "uint64", (HostConfig, "console_size"): "[2]uint",
        (HostConfig, "oom_score_adj"): "int", (HostConfig, "port_bindings"): "nat.PortMap",
        (RestartPolicy, "maximum_retry_count"): "int", (HealthConfig, "retries"): "int",
        (TmpfsOptions, "mode"): "fs.FileMode",
    },
)


# POST /containers/{id}/update decodes into container.UpdateConfig (Resources embedded)
_UPDATE_SCHEMA = GoSchema({**_CREATE_SCHEMA.structs, HostConfig: "container.UpdateConfig"},
                          _CREATE_SCHEMA.fields)


def _decoded(cls: type[_T], data: Any, path: str = "", schema: GoSchema = _CREATE_SCHEMA) -> _T:
    """``from_jsonable`` with Go's names; a type error reads as dockerd 23+ answers it."""
    try:
        return from_jsonable(cls, data, wire_name, path, go=schema, struct="CreateRequest" if path else "")
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None


def config_from_wire(body: Mapping[str, Any]) -> ContainerConfig:
    """A create body (or its Config) -> ContainerConfig. Sets like ExposedPorts arrive as
    ``{"80/tcp": {}}`` and become tuples of keys."""
    data = dict(body)
    for key in _SET_MAPS:
        value = data.get(key)
        if isinstance(value, Mapping):
            data[key] = list(value)
        elif value is not None:
            raise InvalidParameter(f"invalid JSON: json: cannot unmarshal {json_kind(value)} into Go "
                                   f"struct field CreateRequest.{key} of type "
                                   f"{_CREATE_SCHEMA.fields[(ContainerConfig, _snake(key))]}")
    for key in ("Cmd", "Entrypoint", "Shell"):
        if isinstance(data.get(key), str):  # strslice accepts a single string
            data[key] = [data[key]]
    return _decoded(ContainerConfig, data)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")


def host_config_from_wire(body: Any, *, update: bool = False) -> HostConfig:
    """``HostConfig`` of a create body, or (``update``) the body of a container update, as
    dockerd reads it (version differences: compat_api.adjustments)."""
    path, schema = ("", _UPDATE_SCHEMA) if update else ("HostConfig", _CREATE_SCHEMA)
    if not body:
        return HostConfig()
    if not isinstance(body, Mapping):
        return _decoded(HostConfig, body, path, schema)  # raises Go's text
    data = dict(body)
    ports = data.get("PortBindings")
    if isinstance(ports, Mapping):
        data["PortBindings"] = {k: v for k, v in ports.items()}
    return _decoded(HostConfig, data, path, schema)


# --- rendering ----------------------------------------------------------------------------

_CONFIG_OMITEMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                     "MacAddress", "StopSignal", "StopTimeout", "Shell")
_HOST_OMITEMPTY = ("Annotations", "StorageOpt", "Tmpfs", "Sysctls", "Runtime", "Mounts",
                   "Init", "KernelMemory", "KernelMemoryTCP")


def render_config(config: ContainerConfig) -> dict[str, Any]:
    raw = to_jsonable(config, wire_name)
    for key in _SET_MAPS:
        if raw.get(key) is not None:
            raw[key] = {k: {} for k in raw[key]}
    if raw.get("Healthcheck") is not None:
        raw["Healthcheck"] = {k: v for k, v in raw["Healthcheck"].items() if v}
    order = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
             "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
             "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled",
             "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell"]
    out = {k: raw[k] for k in order}
    for key in _CONFIG_OMITEMPTY:
        value = out[key]
        if value is None or (key != "StopTimeout" and not value):
            del out[key]
    return out


def render_host_config(host: HostConfig) -> dict[str, Any]:
    raw: dict[str, Any] = to_jsonable(host, wire_name)
    if raw.get("Mounts"):
        raw["Mounts"] = [_render_mount_request(m) for m in raw["Mounts"]]
    for key in _HOST_OMITEMPTY:
        if not raw.get(key):
            raw.pop(key, None)
    if host.init is not None:
        raw["Init"] = host.init
    return raw


def _with_links(host: dict[str, Any], name: str, network_mode: str | None) -> dict[str, Any]:
    """``Links`` in dockerd's stored form; none on a user-defined network (dockerd ignores them)."""
    if host.get("Links"):
        legacy = (network_mode or "default") in ("default", "bridge")
        host["Links"] = [canonical_link(entry, name) for entry in host["Links"]] if legacy else None
    return host


def _render_mount_request(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if v not in (None, "", False) or k in ("Target", "Type")}


def render_state(state: State) -> ContainerState:
    return {
        "Status": state.status.value,
        "Running": state.running,
        "Paused": state.paused,
        "Restarting": state.restarting,
        "OOMKilled": state.oom_killed,
        "Dead": state.dead,
        "Pid": state.pid,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": rfc3339_nano(state.started_at_ns),
        "FinishedAt": rfc3339_nano(state.finished_at_ns),
        **_render_health(state),  # type: ignore[typeddict-item]  # no Health in the wire type yet
    }


def _render_health(state: State) -> dict[str, Any]:
    health = state.health
    if not isinstance(health, Health):
        return {}
    return {"Health": {
        "Status": health.status, "FailingStreak": health.failing_streak,
        "Log": [{"Start": rfc3339_nano(r.start_ns), "End": rfc3339_nano(r.end_ns),
                 "ExitCode": r.exit_code, "Output": r.output} for r in health.log],
    }}


def render_mount_point(m: MountPoint) -> WireMountPoint:
    out: dict[str, Any] = {"Type": m.type}
    if m.name:
        out["Name"] = m.name
    out.update({"Source": m.source, "Destination": m.destination})
    if m.driver:
        out["Driver"] = m.driver
    out.update({"Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
    return out  # type: ignore[return-value]


def network_mode_name(host: HostConfig) -> str:
    mode = host.network_mode
    return "bridge" if mode in ("", "default") else mode


def _endpoint(version: APIVersion) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "DriverOpts": None,
    }
    if version >= APIVersion(1, 48):
        endpoint["GwPriority"] = 0
    endpoint.update({
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
    })
    if version >= APIVersion(1, 44):
        endpoint["DNSNames"] = None
    return endpoint


def default_network_settings(container: Container, version: APIVersion) -> dict[str, Any]:
    """NetworkSettings until the networking service provides them."""
    mode = network_mode_name(container.host_config)
    networks = {} if mode.startswith("container:") else {mode: _endpoint(version)}
    ports: dict[str, Any] = {p: None for p in container.config.exposed_ports or ()}
    return {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports, "SandboxKey": "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
        "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": networks,
    }


def render_inspect(
    container: Container,
    version: APIVersion,
    *,
    network_settings: dict[str, Any] | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    layer = container.rw_layer
    graph: dict[str, Any] = {"Data": None, "Name": container.driver}
    if layer is not None:
        merged = layer.upperdir.rsplit("/", 1)[0] + "/merged"
        graph["Data"] = {"LowerDir": ":".join(layer.lowerdirs), "MergedDir": merged,
                         "UpperDir": layer.upperdir, "WorkDir": layer.workdir}
    out: dict[str, Any] = {
        "Id": container.id,
        "Created": rfc3339_nano(container.created_ns),
        "Path": container.path,
        "Args": list(container.args),
        "State": render_state(container.state),
        "Image": container.image_id,
        "ResolvConfPath": str(container.resolv_conf_path),
        "HostnamePath": str(container.hostname_path),
        "HostsPath": str(container.hosts_path),
        "LogPath": str(container.log_path) if container.log_driver == "json-file" else "",
        "Name": container.name,
        "RestartCount": container.restart_count,
        "Driver": container.driver,
        "Platform": container.platform,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list(container.exec_ids) or None,
        "HostConfig": _with_links(render_host_config(container.host_config), container.name,
                                  container.host_config.network_mode),
        "GraphDriver": graph,
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    out["Mounts"] = [render_mount_point(m) for m in container.mount_points]
    out["Config"] = render_config(container.config)
    out["NetworkSettings"] = network_settings or default_network_settings(container, version)
    return out


def command_string(container: Container) -> str:
    """``Command`` in ``docker ps``: path and args, shell-quoted where needed."""
    return " ".join([container.path, *(shlex.quote(a) for a in container.args)])


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // (24 * 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // (24 * 30)} months"
    return f"{int(hours / 24 / 365)} years"


def human_status(state: State, now_ns: int | None = None) -> str:
    """``Status`` in ``docker ps`` (dockerd's State.String)."""
    now = now_ns if now_ns is not None else time.time_ns()
    if state.running:
        if state.paused:
            return f"Up {human_duration((now - state.started_at_ns) / 1e9)} (Paused)"
        if state.restarting:
            return (f"Restarting ({state.exit_code}) "
                    f"{human_duration((now - state.finished_at_ns) / 1e9)} ago")
        up = f"Up {human_duration((now - state.started_at_ns) / 1e9)}"
        if isinstance(state.health, Health):
            status = state.health.status
            return f"{up} (health: {status})" if status == "starting" else f"{up} ({status})"
        return up
    if state.removal_in_progress:
        return "Removal In Progress"
    if state.dead:
        return "Dead"
    if state.started_at_ns == 0:
        return "Created"
    if state.finished_at_ns == 0:
        return ""
    return f"Exited ({state.exit_code}) {human_duration((now - state.finished_at_ns) / 1e9)} ago"


def summary_ports(ports: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``NetworkSettings.Ports`` (``{"8000/tcp": [{"HostIp", "HostPort"}] | null}``) as the
    flat list ``GET /containers/json`` carries: one item per binding, or one without a
    public side for an exposed port that is not published."""
    items: list[dict[str, Any]] = []
    for key, bindings in sorted((ports or {}).items()):
        number, _, proto = key.partition("/")
        private = int(number)
        kind = proto or "tcp"
        if not bindings:
            items.append({"PrivatePort": private, "Type": kind})
            continue
        for binding in bindings:
            host_port = binding.get("HostPort") or ""
            item: dict[str, Any] = {"IP": binding.get("HostIp", ""), "PrivatePort": private}
            if host_port.isdigit():
                item["PublicPort"] = int(host_port)
            item["Type"] = kind
            items.append(item)
    return items


def render_summary(
    container: Container,
    version: APIVersion,
    *,
    image_id: str | None = None,
    network_settings: dict[str, Any] | None = None,
    size: tuple[int, int] | None = None,
    link_names: list[str] | None = None,
) -> ContainerSummary:
    settings = network_settings or default_network_settings(container, version)
    out: ContainerSummary = {
        "Id": container.id,
        "Names": sorted([container.name, *(link_names or ())]),  # dockerd lists them sorted
        "Image": container.config.image,
        "ImageID": image_id or container.image_id,
        "Command": command_string(container),
        "Created": container.created_ns // 1_000_000_000,
        "Ports": summary_ports(settings.get("Ports")),
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    host: dict[str, Any] = {"NetworkMode": container.host_config.network_mode}
    if container.host_config.annotations:
        host["Annotations"] = dict(container.host_config.annotations)
    out.update({
        "Labels": dict(container.config.labels or {}),
        "State": container.state.status.value,
        "Status": human_status(container.state),
        "HostConfig": host,
        "NetworkSettings": {"Networks": settings.get("Networks") or {}},
        "Mounts": [render_mount_point(m) for m in container.mount_points],
    })
    return cast(ContainerSummary, adjust_response("ContainerList", version, cast(dict[str, Any], out)))


def render_create(container_id: str, warnings: tuple[str, ...]) -> ContainerCreateResponse:
    return {"Id": container_id, "Warnings": list(warnings)}


def render_wait(status: ExitStatus) -> ContainerWaitResponse:
    return {"StatusCode": status.exit_code,
            "Error": {"Message": status.error} if status.error else None}


# --- exec ---------------------------------------------------------------------------------


_EXEC_FIELDS = ("AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "DetachKeys", "Tty",
                "Env", "Cmd", "Privileged", "User", "WorkingDir")


def go_json_keys(body: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Go's encoding/json matches object keys to struct fields case-insensitively (an exact
    match wins): docker-py sends exec's ``detachKeys`` in lower camel case."""
    out = dict(body)
    for name in fields:
        if name not in out:
            folded = name.casefold()
            match = next((k for k in body if k.casefold() == folded), None)
            if match is not None:
                out[name] = body[match]
    return out


def exec_config_from_wire(body: Mapping[str, Any]) -> ExecConfig:
    check_body(body, EXEC_CREATE)
    body = go_json_keys(body, _EXEC_FIELDS)

    def strs(key: str) -> tuple[str, ...]:
        return tuple(body.get(key) or ())

    def flag(key: str) -> bool:
        return bool(body.get(key))

    size = body.get("ConsoleSize")
    console: tuple[int, int] | None = None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        console = (size[0], size[1])
    return ExecConfig(
        cmd=strs("Cmd"), user=str(body.get("User") or ""), privileged=flag("Privileged"),
        tty=flag("Tty"), attach_stdin=flag("AttachStdin"), attach_stdout=flag("AttachStdout"),
        attach_stderr=flag("AttachStderr"), detach_keys=str(body.get("DetachKeys") or ""),
        env=strs("Env"), working_dir=str(body.get("WorkingDir") or ""), console_size=console,
    )


def render_exec_inspect(record: ExecRecord) -> ExecInspectResponse:
    config = record.config
    return {
        "CanRemove": record.can_remove,
        "ContainerID": record.container.id,
        # dockerd keeps the parsed bytes ([]byte): JSON shows them base64-encoded
        "DetachKeys": base64.b64encode(parse_detach_keys(config.detach_keys)).decode()
        if config.detach_keys else "",
        "ExitCode": record.exit_code,
        "ID": record.id,
        "OpenStderr": config.attach_stderr,
        "OpenStdin": config.attach_stdin,
        "OpenStdout": config.attach_stdout,
        "ProcessConfig": {
            "arguments": list(config.cmd[1:]),
            "entrypoint": config.cmd[0] if config.cmd else "",
            "privileged": config.privileged,
            "tty": config.tty,
            "user": config.user,
        },
        "Running": record.running,
        "Pid": record.pid,
    }


__all__ = ["wire_name", "config_from_wire", "host_config_from_wire", "render_config",
           "render_host_config", "render_state", "render_mount_point", "render_inspect",
           "render_summary", "render_create", "render_wait", "human_status", "human_duration",
           "command_string", "exec_config_from_wire", "render_exec_inspect",
           "default_network_settings", "network_mode_name"]
