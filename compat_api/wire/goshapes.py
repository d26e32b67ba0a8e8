"""The Go types that dockerd decodes request bodies into, as data, and one checker that
refuses a body of the wrong shape with Go's ``encoding/json`` text.

Bodies that become domain dataclasses (container create, update, commit) are checked by
``runtime.containers.codec`` as they are decoded; the others (networks, volumes, execs,
the create request's NetworkingConfig) are handed to their parsers as plain JSON, so this
checks them first: every value must be of the JSON kind its Go field takes (``null`` is
always fine: Go leaves the zero value), integers must fit their Go type, and keys match
Go's way (case-insensitively; unknown keys are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.containers.codec import json_kind, number_literal
from runtime.errors import InvalidParameter


@dataclass(frozen=True, slots=True)
class GoType:
    """A Go type: ``kind`` is the JSON kind it decodes from ("string", "number", "bool",
    "array", "object"); ``elem`` the element of a slice or map; ``fields`` a struct's."""

    name: str
    kind: str
    elem: GoType | None = None
    fields: Mapping[str, GoType] = field(default_factory=dict)
    int_range: tuple[int, int] | None = None


STRING = GoType("string", "string")
BOOL = GoType("bool", "bool")
INT = GoType("int", "number", int_range=(-(1 << 63), (1 << 63) - 1))
UINT64 = GoType("uint64", "number", int_range=(0, (1 << 64) - 1))


def slice_of(elem: GoType) -> GoType:
    return GoType(f"[]{elem.name}", "array", elem=elem)


def map_of(elem: GoType) -> GoType:
    return GoType(f"map[string]{elem.name}", "object", elem=elem)


def struct(name: str, **fields: GoType) -> GoType:
    return GoType(name, "object", fields=fields)


STRINGS = slice_of(STRING)
STRING_MAP = map_of(STRING)

ENDPOINT_SETTINGS = struct(
    "network.EndpointSettings",
    IPAMConfig=struct("network.EndpointIPAMConfig", IPv4Address=STRING, IPv6Address=STRING,
                      LinkLocalIPs=STRINGS),
    Links=STRINGS, MacAddress=STRING, Aliases=STRINGS, DriverOpts=STRING_MAP, GwPriority=INT,
    NetworkID=STRING, EndpointID=STRING, Gateway=STRING, IPAddress=STRING, IPPrefixLen=INT,
    IPv6Gateway=STRING, GlobalIPv6Address=STRING, GlobalIPv6PrefixLen=INT, DNSNames=STRINGS,
)
NETWORK_CREATE = struct(
    "network.CreateRequest",
    Name=STRING, CheckDuplicate=BOOL, Driver=STRING, Scope=STRING, EnableIPv4=BOOL, EnableIPv6=BOOL,
    IPAM=struct("network.IPAM", Driver=STRING, Options=STRING_MAP,
                Config=slice_of(struct("network.IPAMConfig", Subnet=STRING, IPRange=STRING,
                                       Gateway=STRING, AuxiliaryAddresses=STRING_MAP))),
    Internal=BOOL, Attachable=BOOL, Ingress=BOOL, ConfigOnly=BOOL,
    ConfigFrom=struct("network.ConfigReference", Network=STRING),
    Options=STRING_MAP, Labels=STRING_MAP,
)
NETWORK_CONNECT = struct("network.ConnectOptions", Container=STRING, EndpointConfig=ENDPOINT_SETTINGS)
NETWORK_DISCONNECT = struct("network.DisconnectOptions", Container=STRING, Force=BOOL)
NETWORKING_CONFIG = struct("network.NetworkingConfig", EndpointsConfig=map_of(ENDPOINT_SETTINGS))
VOLUME_CREATE = struct("volume.CreateOptions", Name=STRING, Driver=STRING, DriverOpts=STRING_MAP,
                       Labels=STRING_MAP)
EXEC_CREATE = struct(
    "container.ExecOptions",
    User=STRING, Privileged=BOOL, Tty=BOOL, ConsoleSize=GoType("*[2]uint", "array", elem=UINT64),
    AttachStdin=BOOL, AttachStderr=BOOL, AttachStdout=BOOL, DetachKeys=STRING, Env=STRINGS,
    WorkingDir=STRING, Cmd=STRINGS,
)
EXEC_START = struct("container.ExecStartOptions", Detach=BOOL, Tty=BOOL,
                    ConsoleSize=GoType("*[2]uint", "array", elem=UINT64))
AUTH = struct("registry.AuthConfig", Username=STRING, Password=STRING, Auth=STRING, Email=STRING,
              ServerAddress=STRING, IdentityToken=STRING, RegistryToken=STRING)


def check_body(body: Any, shape: GoType, *, holder: str = "", path: str = "",
               prefix: str = "invalid JSON: ") -> None:
    """Raise InvalidParameter with Go's text where ``body`` does not fit ``shape``.
    ``holder``/``path``: where ``body`` sits when it is a field of a larger body."""
    _check(body, shape, holder or shape.name.rsplit(".", 1)[-1], path, prefix)


def _check(value: Any, shape: GoType, holder: str, path: str, prefix: str) -> None:
    if value is None:
        return
    kind = json_kind(value)
    if kind != shape.kind:
        raise _error(prefix, kind, holder, path, shape)
    if shape.int_range is not None:
        low, high = shape.int_range
        if isinstance(value, float) or not low <= value <= high:
            raise _error(prefix, f"number {number_literal(value)}", holder, path, shape)
    elif shape.fields:
        inner = shape.name.rsplit(".", 1)[-1]
        by_lower = {name.lower(): (name, t) for name, t in shape.fields.items()}
        for key, item in value.items():
            found = by_lower.get(str(key).lower())
            if found is not None:
                name, field_type = found
                _check(item, field_type, inner, f"{path}.{name}" if path else name, prefix)
    elif shape.elem is not None:
        items = value.values() if kind == "object" else value
        for item in items:
            _check(item, shape.elem, holder, path, prefix)


def _error(prefix: str, what: str, holder: str, path: str, shape: GoType) -> InvalidParameter:
    if path:
        return InvalidParameter(f"{prefix}json: cannot unmarshal {what} into Go struct field "
                                f"{holder}.{path} of type {shape.name}")
    return InvalidParameter(f"{prefix}json: cannot unmarshal {what} into Go value of type {shape.name}")


__all__ = ["GoType", "check_body", "NETWORK_CREATE", "NETWORK_CONNECT", "NETWORK_DISCONNECT",
           "NETWORKING_CONFIG", "VOLUME_CREATE", "EXEC_CREATE", "EXEC_START", "AUTH"]
