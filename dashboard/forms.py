"""The dashboard's create forms, parsed into Engine API bodies (one parser per form).

The browser sends what the user typed (``8080:80``, ``KEY=value``, ``vol:/data``); the engine
gets the body ``docker run`` would send for the same flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
_PORT = re.compile(r"^(?:(?:(?P<ip>[0-9.]+|\[[0-9a-fA-F:]+\]):)?(?P<host>\d{0,5}):)?(?P<ctr>\d{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")


class FormError(ValueError):
    """A field the user typed is not valid; the message says which."""


class PortBinding(TypedDict):
    HostIp: str
    HostPort: str


class RestartPolicy(TypedDict):
    Name: str


class HostConfig(TypedDict, total=False):
    PortBindings: dict[str, list[PortBinding]]
    Binds: list[str]
    NetworkMode: str
    RestartPolicy: RestartPolicy


class CreateBody(TypedDict, total=False):
    Image: str
    Cmd: list[str]
    Env: list[str]
    Tty: bool
    OpenStdin: bool
    ExposedPorts: dict[str, dict[str, str]]
    HostConfig: HostConfig


@dataclass(frozen=True, slots=True)
class RunForm:
    """What the "run a container" form holds."""

    image: str
    name: str
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    ports: tuple[str, ...]
    volumes: tuple[str, ...]
    network: str
    restart: str
    tty: bool

    @classmethod
    def parse(cls, data: object) -> RunForm:
        if not isinstance(data, dict):
            raise FormError("expected a JSON object")
        image = _text(data, "image").strip()
        if not image:
            raise FormError("image: required")
        restart = _text(data, "restart") or "no"
        if restart not in RESTART_POLICIES:
            raise FormError(f"restart: one of {', '.join(RESTART_POLICIES)}")
        env = _lines(data, "env")
        for item in env:
            if "=" not in item or item.startswith("="):
                raise FormError(f"env: {item!r} is not KEY=value")
        return cls(image=image, name=_text(data, "name").strip(), cmd=_lines(data, "cmd", strip=False),
                   env=env, ports=_lines(data, "ports"), volumes=_lines(data, "volumes"),
                   network=_text(data, "network").strip(), restart=restart, tty=bool(data.get("tty", False)))

    def body(self) -> CreateBody:
        """The POST /containers/create body."""
        exposed: dict[str, dict[str, str]] = {}
        bindings: dict[str, list[PortBinding]] = {}
        for spec in self.ports:
            m = _PORT.match(spec)
            if m is None:
                raise FormError(f"ports: {spec!r} is not [ip:]hostPort:containerPort[/proto]")
            key = f"{m['ctr']}/{m['proto'] or 'tcp'}"
            exposed[key] = {}
            if m["host"] is not None:
                bindings.setdefault(key, []).append(
                    PortBinding(HostIp=(m["ip"] or "").strip("[]"), HostPort=m["host"]))
        for spec in self.volumes:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
                raise FormError(f"volumes: {spec!r} is not source:/container/path[:ro]")
        host = HostConfig(RestartPolicy=RestartPolicy(Name="" if self.restart == "no" else self.restart))
        if bindings:
            host["PortBindings"] = bindings
        if self.volumes:
            host["Binds"] = list(self.volumes)
        if self.network:
            host["NetworkMode"] = self.network
        body = CreateBody(Image=self.image, Tty=self.tty, OpenStdin=self.tty, HostConfig=host)
        if self.cmd:
            body["Cmd"] = list(self.cmd)
        if self.env:
            body["Env"] = list(self.env)
        if exposed:
            body["ExposedPorts"] = exposed
        return body


def _text(data: dict[object, object], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormError(f"{key}: expected text")
    return value


def _lines(data: dict[object, object], key: str, strip: bool = True) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormError(f"{key}: expected a list of text")
    items = [str(v).strip() if strip else str(v) for v in value]
    return tuple(v for v in items if v)


def name_param(data: object, key: str, required: bool = True) -> str:
    """One text field of a small JSON form (network, volume, tag names)."""
    if not isinstance(data, dict):
        raise FormError("expected a JSON object")
    value = _text(data, key).strip()
    if required and not value:
        raise FormError(f"{key}: required")
    return value
