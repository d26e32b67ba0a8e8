"""Image config JSON as dockerd writes it.

The image ID is the SHA-256 of these bytes, so they are produced once (import, commit)
and then only ever stored and copied, never re-encoded. The encoding follows Go's
``encoding/json`` as dockerd uses it: top-level keys sorted (``image.Image`` marshals
through a map), the runtime ``config`` in ``container.Config`` field order, map keys
sorted, compact separators, ``<``, ``>``, ``&`` escaped, other non-ASCII left as UTF-8.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping
from typing import Any

from runtime.timefmt import rfc3339_nano

# container.Config fields in struct order, with Go's omitempty ones marked
_CONFIG_FIELDS: tuple[tuple[str, bool], ...] = (
    ("Hostname", False),
    ("Domainname", False),
    ("User", False),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("ExposedPorts", True),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", False),
    ("Cmd", False),
    ("Healthcheck", True),
    ("ArgsEscaped", True),
    ("Image", False),
    ("Volumes", False),
    ("WorkingDir", False),
    ("Entrypoint", False),
    ("NetworkDisabled", True),
    ("MacAddress", True),
    ("OnBuild", False),
    ("Labels", False),
    ("StopSignal", True),
    ("StopTimeout", True),
    ("Shell", True),
)
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == 0 or value == [] or value == {}


def normalize_runtime_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``container.Config`` as dockerd serialises it inside an image config."""
    cfg = dict(cfg or {})
    out: dict[str, Any] = {}
    for key, omitempty in _CONFIG_FIELDS:
        value = cfg.get(key, _CONFIG_DEFAULTS.get(key))
        if omitempty and _empty(value):
            continue
        if isinstance(value, Mapping):
            value = {k: value[k] for k in sorted(value)}
        out[key] = value
    return out


def _go_escape(text: str) -> str:
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def encode(doc: Mapping[str, Any]) -> bytes:
    """Bytes of an image config (see module docs). ``doc["config"]`` keeps its order."""
    ordered: dict[str, Any] = {}
    for key in sorted(doc):
        value = doc[key]
        if key in ("config", "container_config") and isinstance(value, Mapping):
            value = normalize_runtime_config(value)
        ordered[key] = value
    return _go_escape(json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))).encode()


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) in OCI terms for this machine."""
    machine = platform.machine().lower()
    arch = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm",
        "i686": "386",
        "i386": "386",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }.get(machine, machine)
    variant = "v7" if machine == "armv7l" else ""
    return "linux", arch, variant


def now_rfc3339() -> str:
    return rfc3339_nano(time.time_ns())


def import_config(
    diff_id: str,
    runtime_config: Mapping[str, Any],
    comment: str,
    docker_version: str,
    created: str | None = None,
) -> dict[str, Any]:
    """The config dockerd writes for ``docker import`` (one layer, one history entry)."""
    created = created or now_rfc3339()
    os_name, arch, variant = host_platform()
    doc: dict[str, Any] = {
        "architecture": arch,
        "config": dict(runtime_config),
        "created": created,
        "docker_version": docker_version,
        "history": [{"created": created, "comment": comment}] if comment else [{"created": created}],
        "os": os_name,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if comment:
        doc["comment"] = comment
    if variant:
        doc["variant"] = variant
    return doc


def child_config(
    parent: Mapping[str, Any] | None,
    diff_id: str | None,
    runtime_config: Mapping[str, Any],
    *,
    comment: str,
    author: str,
    created_by: str,
    docker_version: str,
    container_id: str = "",
    container_config: Mapping[str, Any] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """A config on top of ``parent`` (moby ``NewChildImage``): ``diff_id`` None means an
    empty layer (metadata-only change, ``empty_layer`` in history)."""
    created = created or now_rfc3339()
    os_name, arch, variant = host_platform()
    parent = parent or {}
    diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
    if diff_id is not None:
        diff_ids.append(diff_id)
    history_entry: dict[str, Any] = {"created": created}
    if author:
        history_entry["author"] = author
    if created_by:
        history_entry["created_by"] = created_by
    if comment:
        history_entry["comment"] = comment
    if diff_id is None:
        history_entry["empty_layer"] = True
    doc: dict[str, Any] = {
        "architecture": parent.get("architecture") or arch,
        "config": dict(runtime_config),
        "created": created,
        "docker_version": docker_version,
        "history": [*list(parent.get("history") or []), history_entry],
        "os": parent.get("os") or os_name,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    variant = parent.get("variant") or (variant if not parent else "")
    if variant:
        doc["variant"] = variant
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    if container_id:
        doc["container"] = container_id
    if container_config is not None:
        doc["container_config"] = dict(container_config)
    for key in ("os.version", "os.features"):
        if parent.get(key):
            doc[key] = parent[key]
    return doc
