"""``docker commit --change``: Dockerfile instructions applied to a container's config."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

from runtime.containers.model import ContainerConfig, HealthConfig
from runtime.images.changes import parse_healthcheck
from runtime.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
           "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _words(rest: str, shell: tuple[str, ...]) -> tuple[str, ...]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    return (*shell, text)


def _pairs(rest: str) -> list[tuple[str, str]]:
    text = rest.strip()
    words = shlex.split(text)
    if words and "=" not in words[0]:
        key, _, value = text.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidParameter(f"Syntax error - can't find = in \"{word}\". Must be of the "
                                   "form: name=value")
        pairs.append((key, value))
    return pairs


def apply_changes(config: ContainerConfig, changes: tuple[str, ...] | list[str]) -> ContainerConfig:
    shell = tuple(config.shell or ("/bin/sh", "-c"))
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instruction, _, rest = line.partition(" ")
        name = instruction.upper()
        if name not in ALLOWED:
            raise InvalidParameter(f"{instruction} is not a valid change command")
        if name == "CMD":
            config = replace(config, cmd=_words(rest, shell))
        elif name == "ENTRYPOINT":
            config = replace(config, entrypoint=_words(rest, shell))
        elif name == "ENV":
            env = list(config.env or ())
            for key, value in _pairs(rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config = replace(config, env=tuple(env))
        elif name == "LABEL":
            labels = dict(config.labels or {})
            labels.update(_pairs(rest))
            config = replace(config, labels=labels)
        elif name == "EXPOSE":
            ports = list(config.exposed_ports or ())
            for port in rest.split():
                port = port if "/" in port else port + "/tcp"
                if port not in ports:
                    ports.append(port)
            config = replace(config, exposed_ports=tuple(ports))
        elif name == "VOLUME":
            volumes = list(config.volumes or ())
            for volume in _words(rest, ()) if rest.strip().startswith("[") else rest.split():
                if volume not in volumes:
                    volumes.append(volume)
            config = replace(config, volumes=tuple(volumes))
        elif name == "USER":
            config = replace(config, user=rest.strip())
        elif name == "WORKDIR":
            config = replace(config, working_dir=rest.strip())
        elif name == "STOPSIGNAL":
            config = replace(config, stop_signal=rest.strip())
        elif name == "ONBUILD":
            config = replace(config, on_build=tuple(config.on_build or ()) + (rest.strip(),))
        elif name == "HEALTHCHECK":
            wire = parse_healthcheck(rest)
            config = replace(config, healthcheck=HealthConfig(
                test=tuple(wire["Test"]), interval=wire.get("Interval", 0),
                timeout=wire.get("Timeout", 0), retries=wire.get("Retries", 0),
                start_period=wire.get("StartPeriod", 0), start_interval=wire.get("StartInterval", 0)))
    return config


__all__ = ["apply_changes", "ALLOWED"]
