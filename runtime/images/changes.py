"""Dockerfile-style ``changes`` for import and commit (``docker import -c 'CMD ["sh"]'``).

dockerd runs these through its Dockerfile dispatcher, restricted to the instructions that
only change configuration: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR. The runtime cannot use the builder package (layering),
so this module implements just those instructions on a runtime-config dict.
"""

from __future__ import annotations

import json
import posixpath
import re
import signal
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.gofmt import parse_go_duration
from runtime.errors import InvalidParameter

VALID = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal", "user", "volume", "workdir")



def _logical_lines(changes: Iterable[str]) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in "\n".join(changes).split("\n"):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def _json_array(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _expand(word: str, env: Mapping[str, str]) -> str:
    """Shell-like word processing: quotes removed, backslash escapes, $VAR/${VAR}."""
    out: list[str] = []
    i = 0
    quote = ""
    while i < len(word):
        c = word[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
            i += 1
            continue
        if c == "\\" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
            continue
        if c in "\"'" and not quote:
            quote = c
            i += 1
            continue
        if c == '"' and quote == '"':
            quote = ""
            i += 1
            continue
        if c == "$":
            m = re.match(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)", word[i:])
            if m:
                name = m.group(1) or m.group(2)
                whole = m.group(0)
                value = env.get(name, "")
                mod = re.match(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?)([-+])(.*)\}$", whole)
                if mod:
                    colon, op, alt = mod.groups()
                    present = name in env and (not colon or env[name] != "")
                    if op == "-":
                        value = env[name] if present else alt
                    else:
                        value = alt if present else ""
                out.append(value)
                i += len(whole)
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _split_words(text: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes for :func:`_expand`."""
    words: list[str] = []
    current = ""
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            current += c
            if c == "\\" and quote == '"' and i + 1 < len(text):
                current += text[i + 1]
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
            current += c
        elif c == "\\" and i + 1 < len(text):
            current += c + text[i + 1]
            i += 1
        elif c.isspace():
            if current:
                words.append(current)
                current = ""
        else:
            current += c
        i += 1
    if current:
        words.append(current)
    return words


def _env_map(cfg: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in cfg.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _key_values(instruction: str, rest: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    words = _split_words(rest)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0].split("\\")[0] and instruction == "ENV":
        # legacy form: ENV key value with spaces
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise InvalidParameter("ENV must have two arguments")
        return [(key, _expand(value.strip(), env))]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            if instruction == "LABEL":
                raise InvalidParameter(f"LABEL requires at least one argument")
            raise InvalidParameter(f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value")
        if not key:
            raise InvalidParameter(f"{instruction} names can not be blank")
        pairs.append((_expand(key, env), _expand(value, env)))
    return pairs


def _parse_duration(text: str, flag: str) -> int:
    if text == "":
        return 0
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None


def parse_healthcheck(rest: str) -> dict[str, Any]:
    """The arguments of a HEALTHCHECK change as Docker's wire ``HealthConfig``."""
    words = rest.split()
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    if not words:
        raise InvalidParameter("HEALTHCHECK requires an argument")
    kind = words[0].upper()
    tail = rest.split(None, len(flags) + 1)[-1] if len(rest.split(None, len(flags) + 1)) > len(flags) + 1 else ""
    if kind == "NONE":
        if flags or len(words) > 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise InvalidParameter(f'Unknown type "{words[0]}" in HEALTHCHECK (try CMD)')
    cmd_text = tail.strip()
    as_json = _json_array(cmd_text)
    test = ["CMD", *as_json] if as_json is not None else ["CMD-SHELL", cmd_text]
    hc: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in flags:
            hc[key] = _parse_duration(flags[flag], flag)
    if "retries" in flags:
        hc["Retries"] = int(flags["retries"])
    unknown = set(flags) - {"interval", "timeout", "start-period", "start-interval", "retries"}
    if unknown:
        raise InvalidParameter(f"Unknown flag: {sorted(unknown)[0]}")
    return hc


def _validate_signal(value: str) -> None:
    if value.isdigit():
        if int(value) == 0:
            raise InvalidParameter(f"Invalid signal: {value}")
        return
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        return
    if not hasattr(signal.Signals, name) and name not in signal.Signals.__members__:
        raise InvalidParameter(f"Invalid signal: {value}")


def _expand_ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if "-" in port:
        start_text, _, end_text = port.partition("-")
        if not (start_text.isdigit() and end_text.isdigit()) or int(end_text) < int(start_text):
            raise InvalidParameter(f"Invalid containerPort: {spec}")
        return [f"{p}/{proto}" for p in range(int(start_text), int(end_text) + 1)]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidParameter(f"Invalid containerPort: {port}")
    return [f"{int(port)}/{proto}"]


def apply_changes(config: Mapping[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Apply ``changes`` to a copy of the runtime ``config`` and return it."""
    cfg: dict[str, Any] = json.loads(json.dumps(dict(config)))
    cmd_set = False
    for line in _logical_lines(changes):
        instruction, _, rest = line.partition(" ")
        rest = rest.strip()
        keyword = instruction.lower()
        if keyword not in VALID:
            raise InvalidParameter(f"{keyword} is not a valid change command")
        upper = instruction.upper()
        env = _env_map(cfg)
        if keyword in ("cmd", "entrypoint"):
            args = _json_array(rest)
            if args is None:
                args = ["/bin/sh", "-c", rest] if rest else []
            if keyword == "cmd":
                cfg["Cmd"] = args
                cmd_set = True
            else:
                cfg["Entrypoint"] = args if rest else None
                if not cmd_set:
                    cfg["Cmd"] = None
        elif keyword in ("env", "label"):
            pairs = _key_values(upper, rest, env)
            if keyword == "env":
                current = list(cfg.get("Env") or [])
                for key, value in pairs:
                    current = [e for e in current if e.partition("=")[0] != key]
                    current.append(f"{key}={value}")
                cfg["Env"] = current
            else:
                labels = dict(cfg.get("Labels") or {})
                labels.update(pairs)
                cfg["Labels"] = labels
        elif keyword == "expose":
            if not rest:
                raise InvalidParameter("EXPOSE requires at least one argument")
            ports = dict(cfg.get("ExposedPorts") or {})
            for word in rest.split():
                for port in _expand_ports(_expand(word, env)):
                    ports[port] = {}
            cfg["ExposedPorts"] = ports
        elif keyword == "user":
            if not rest:
                raise InvalidParameter("USER requires exactly one argument")
            cfg["User"] = _expand(rest, env)
        elif keyword == "workdir":
            if not rest:
                raise InvalidParameter("WORKDIR requires exactly one argument")
            target = _expand(rest, env)
            cwd = str(cfg.get("WorkingDir") or "")
            if not target.startswith("/"):
                target = posixpath.join("/", cwd, target)
            cfg["WorkingDir"] = posixpath.normpath(target)
        elif keyword == "volume":
            volumes = _json_array(rest)
            if volumes is None:
                volumes = [_expand(w, env) for w in rest.split()]
            if not volumes:
                raise InvalidParameter("VOLUME requires at least one argument")
            current_vols = dict(cfg.get("Volumes") or {})
            for v in volumes:
                if not v.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                current_vols[v.strip()] = {}
            cfg["Volumes"] = current_vols
        elif keyword == "stopsignal":
            value = _expand(rest, env)
            _validate_signal(value)
            cfg["StopSignal"] = value
        elif keyword == "onbuild":
            trigger = rest.split(None, 1)
            if not trigger:
                raise InvalidParameter("ONBUILD requires at least one argument")
            if trigger[0].upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                raise InvalidParameter(f"{trigger[0].upper()} isn't allowed as an ONBUILD trigger")
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), " ".join([trigger[0].upper(), *trigger[1:]])]
        elif keyword == "healthcheck":
            cfg["Healthcheck"] = parse_healthcheck(rest)
    return cfg
