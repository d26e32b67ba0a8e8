"""Legacy links on the default bridge: the environment a ``--link name:alias`` gives the
linking container (dockerd's ``links.Link.ToEnv``)."""

from __future__ import annotations

from collections.abc import Iterable

from runtime.ports import port_key


def _port_key(spec: str) -> tuple[int, int, str]:
    number, proto = port_key(spec)
    # ascending port number; for the same number tcp first
    return (number, 0 if proto == "tcp" else 1, proto)


def link_env(alias: str, link_name: str, child_ip: str, exposed_ports: Iterable[str],
             child_env: Iterable[str]) -> list[str]:
    """``<ALIAS>_PORT``, ``<ALIAS>_PORT_<p>_<PROTO>[_ADDR|_PORT|_PROTO]``, ``<ALIAS>_NAME``
    (``/<linking container>/<alias>``) and ``<ALIAS>_ENV_<var>`` for the target's own
    variables except HOME and PATH. Contiguous port ranges get no ``_START``/``_END``
    variables (dockerd adds them)."""
    prefix = alias.upper().replace("-", "_")
    ports = sorted({p if "/" in p else f"{p}/tcp" for p in exposed_ports}, key=_port_key)
    env: list[str] = []
    if ports:
        number, _, proto = ports[0].partition("/")
        env.append(f"{prefix}_PORT={proto}://{child_ip}:{number}")
    for spec in ports:
        number, _, proto = spec.partition("/")
        base = f"{prefix}_PORT_{number}_{proto.upper()}"
        env += [f"{base}={proto}://{child_ip}:{number}", f"{base}_ADDR={child_ip}",
                f"{base}_PORT={number}", f"{base}_PROTO={proto}"]
    env.append(f"{prefix}_NAME={link_name}")
    for entry in child_env:
        name, sep, value = entry.partition("=")
        if sep and name not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{name}={value}")
    return env


def merge_link_env(env: tuple[str, ...], linked: list[str]) -> tuple[str, ...]:
    """dockerd's order: PATH, HOSTNAME (and TERM), the link variables, then the
    container's own variables, which win over a link variable of the same name."""
    if not linked:
        return env
    head = 3 if len(env) > 2 and env[2].startswith("TERM=") else min(2, len(env))
    own = {entry.partition("=")[0] for entry in env}
    extra = [entry for entry in linked if entry.partition("=")[0] not in own]
    return (*env[:head], *extra, *env[head:])


__all__ = ["link_env", "merge_link_env"]
