"""A container's config from the image's (dockerd's ``merge``) and its command line."""

from __future__ import annotations

from collections.abc import Mapping

from runtime.containers.model import ContainerConfig


def merge_image_config(user: ContainerConfig, image: Mapping[str, object]) -> ContainerConfig:
    """dockerd's ``merge``: fill unset user settings from the image's config.

    ``image`` is the image's runtime config with OCI/Docker keys (Env, Cmd, Entrypoint,
    WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, Shell...).
    """
    from dataclasses import replace

    def strs(key: str) -> tuple[str, ...] | None:
        value = image.get(key)
        if value is None:
            return None
        if isinstance(value, Mapping):
            return tuple(str(k) for k in value)
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        return (str(value),)

    changes: dict[str, object] = {}
    if not user.user and image.get("User"):
        changes["user"] = str(image["User"])
    image_ports = strs("ExposedPorts") or ()
    if image_ports:
        merged = list(user.exposed_ports or ())
        merged += [p for p in image_ports if p not in merged]
        changes["exposed_ports"] = tuple(merged)
    image_env = strs("Env") or ()
    if not user.env:
        changes["env"] = strs("Env")
    else:
        keys = {e.partition("=")[0] for e in user.env}
        changes["env"] = tuple(user.env) + tuple(e for e in image_env
                                                 if e.partition("=")[0] not in keys)
    image_labels = image.get("Labels")
    labels = {str(k): str(v) for k, v in image_labels.items()} if isinstance(
        image_labels, Mapping) else {}
    labels.update(user.labels or {})
    changes["labels"] = labels
    entrypoint = user.entrypoint
    if not entrypoint:
        if not user.cmd:
            changes["cmd"] = strs("Cmd")
            changes["args_escaped"] = bool(image.get("ArgsEscaped", False))
        if entrypoint is None:
            changes["entrypoint"] = strs("Entrypoint")
    if isinstance(image.get("Healthcheck"), Mapping):
        from runtime.containers.codec import from_jsonable
        from runtime.containers.model import HealthConfig
        hc = image["Healthcheck"]
        assert isinstance(hc, Mapping)
        image_hc = from_jsonable(HealthConfig, {_snake(k): v for k, v in hc.items()})
        given = user.healthcheck
        # per field, as dockerd: `run --health-timeout 2s` keeps the image's test
        changes["healthcheck"] = image_hc if given is None else replace(
            given, test=given.test or image_hc.test,
            **{f: getattr(given, f) or getattr(image_hc, f) for f in (
                "interval", "timeout", "retries", "start_period", "start_interval")})
    if not user.working_dir and image.get("WorkingDir"):
        changes["working_dir"] = str(image["WorkingDir"])
    image_volumes = strs("Volumes")
    if not user.volumes:
        changes["volumes"] = image_volumes
    elif image_volumes:
        merged = list(user.volumes)
        merged += [v for v in image_volumes if v not in merged]
        changes["volumes"] = tuple(merged)
    if not user.stop_signal and image.get("StopSignal"):
        changes["stop_signal"] = str(image["StopSignal"])
    if user.on_build is None and strs("OnBuild"):
        changes["on_build"] = strs("OnBuild")
    if user.shell is None and strs("Shell"):
        changes["shell"] = strs("Shell")
    return replace(user, **changes)  # type: ignore[arg-type]


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def command_line(config: ContainerConfig) -> tuple[str, ...]:
    """Entrypoint + Cmd, with ``--entrypoint ""`` meaning no entrypoint."""
    entrypoint = tuple(config.entrypoint or ())
    if entrypoint == ("",):
        entrypoint = ()
    return entrypoint + tuple(config.cmd or ())


__all__ = ["merge_image_config", "command_line"]
