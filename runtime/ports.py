"""Port specs as Docker reads them (go-connections ``nat``): the one implementation for
``EXPOSE`` (builds and ``--change``), published-port keys and host ports, links and
``docker ps``.

``80/tcp`` is a port key (``nat.Port``); ``8000-8001`` a range (``nat.ParsePortRange``).
Numbers are Go's ``strconv.ParseUint(s, 10, 16)``: decimal digits only, at most 65535.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from runtime.errors import InvalidParameter

PROTOCOLS = ("tcp", "udp", "sctp")
_DIGITS = re.compile(r"[0-9]+")


class HostPortBinding(Protocol):
    """What :func:`validate_port_bindings` reads of a binding (``PortBindingSpec``)."""

    @property
    def host_port(self) -> str: ...


def parse_port(text: str) -> int:
    """``nat.ParsePort``: "" is 0; otherwise a 16-bit decimal number (ValueError)."""
    if text == "":
        return 0
    if not _DIGITS.fullmatch(text) or int(text) > 65535:
        raise ValueError(f"invalid port '{text}'")
    return int(text)


def parse_port_range(text: str) -> tuple[int, int]:
    """``nat.ParsePortRange``: ``80`` or ``8000-8001`` as (start, end); ValueError for ""
    and for anything else that is not one."""
    if text == "":
        raise ValueError("empty string specified for ports")
    start_text, dash, end_text = text.partition("-")
    if not dash:
        start = parse_port(text)
        return start, start
    start, end = parse_port(start_text or "x"), parse_port(end_text.split("-")[0] or "x")
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """``nat.SplitProtoPort``: ``"80/udp"`` -> ("udp", "80"); no protocol is tcp."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def port_key(raw: str) -> tuple[int, str]:
    """A port key (``80/tcp``, ``53/UDP``, ``80``) as (number, lower-case protocol);
    ValueError when the number is not one (``nat.Port.Int`` would read 0)."""
    proto, number = split_proto_port(raw)
    port = parse_port(number)
    if number == "":
        raise ValueError(f"invalid port '{raw}'")
    return port, proto.lower()


def expose_specs(ports: Iterable[str]) -> list[str]:
    """``nat.ParsePortSpecs`` as ``EXPOSE`` uses it: ``80``, ``80/udp``, ``8000-8002/tcp``
    as port keys, a range expanded; InvalidParameter with dockerd 20.10's texts."""
    out: list[str] = []
    for raw in ports:
        port, _, proto = raw.partition("/")
        proto = proto.lower() or "tcp"
        if proto not in PROTOCOLS:
            raise InvalidParameter(f"Invalid proto: {proto}")
        try:
            first, last = parse_port_range(port)
        except ValueError:
            raise InvalidParameter(f"Invalid containerPort: {port}") from None
        out += [f"{p}/{proto}" for p in range(first, last + 1)]
    return out


def validate_port_bindings(bindings: Mapping[str, Sequence[HostPortBinding] | None]) -> None:
    """dockerd's ``validatePortBindings`` at create: every key's port is a port and every
    ``HostPort`` a port or a range (or empty); InvalidParameter ``invalid port
    specification: "<value>"`` otherwise."""
    for key, specs in bindings.items():
        _, number = split_proto_port(key)
        try:
            parse_port(number)
        except ValueError:
            raise InvalidParameter(f'invalid port specification: "{number}"') from None
        for spec in specs or ():
            host_port = spec.host_port
            _, host_number = split_proto_port(host_port)
            try:
                if host_number:
                    parse_port_range(host_number)
            except ValueError:
                raise InvalidParameter(f'invalid port specification: "{host_port}"') from None


__all__ = ["PROTOCOLS", "expose_specs", "parse_port", "parse_port_range", "port_key",
           "split_proto_port", "validate_port_bindings"]
