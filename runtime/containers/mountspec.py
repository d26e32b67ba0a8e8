"""Parsing what a container asks for in volumes, with dockerd's (linux parser) rules and
texts: ``HostConfig.Binds`` entries that name a volume (``name:/dst[:mode]``, or just
``/dst``), ``HostConfig.Mounts`` of type ``volume`` and ``HostConfig.VolumesFrom``.

Pure functions: nothing here creates or looks up a volume.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidParameter

RW_MODES = frozenset({"rw", "ro"})
LABEL_MODES = frozenset({"z", "Z"})
PROPAGATION_MODES = frozenset({"private", "rprivate", "slave", "rslave", "shared", "rshared"})
COPY_MODES = frozenset({"nocopy"})
CONSISTENCY_MODES = frozenset({"consistent", "cached", "delegated"})


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """One volume mount a container asks for.

    ``name`` is empty for an anonymous volume (the service generates one). ``mode`` is what
    inspect shows in ``Mounts[].Mode``. ``named`` is True when the container's own config
    names the volume (``docker rm -v`` keeps those)."""

    name: str
    destination: str
    rw: bool = True
    mode: str = ""
    driver: str = ""
    copy_data: bool = True
    driver_opts: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None

    @property
    def named(self) -> bool:
        return bool(self.name)


def valid_mode(mode: str) -> bool:
    """dockerd's ``ValidMountMode``: known words, at most one of each kind."""
    if mode == "":
        return True
    counts = [0, 0, 0, 0, 0]
    for word in mode.split(","):
        for i, kind in enumerate((RW_MODES, LABEL_MODES, PROPAGATION_MODES, COPY_MODES,
                                  CONSISTENCY_MODES)):
            if word in kind:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


def read_write(mode: str) -> bool:
    return valid_mode(mode) and "ro" not in mode.split(",")


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def _check_target(target: str, kind: str = "volume") -> None:
    prefix = f'invalid mount config for type "{kind}": '
    if not target:
        raise InvalidParameter(prefix + "field Target must not be empty")
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        raise InvalidParameter(prefix + "invalid specification: destination can't be '/'")
    if not posixpath.isabs(target.replace("\\", "/")):
        raise InvalidParameter(prefix + f"invalid mount path: '{target}' mount path must be "
                               "absolute")


def is_volume_bind(raw: str) -> bool:
    """True when a ``Binds`` entry is about a volume rather than a host path (including
    entries dockerd refuses as volume specs, so their errors come from here)."""
    parts = raw.split(":", 3)
    if not parts[0]:
        return False
    if len(parts) == 1:
        return True
    if len(parts) == 2 and valid_mode(parts[1]):
        return True
    return not posixpath.isabs(parts[0])


def parse_volume_bind(raw: str, volume_driver: str = "") -> VolumeSpec:
    """A ``Binds`` entry naming a volume -> VolumeSpec (dockerd's ``ParseMountRaw``)."""
    parts = raw.split(":", 3)
    if not parts[0]:
        raise InvalidParameter(_invalid_spec(raw))
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            raise InvalidParameter(_invalid_spec(raw))  # "/foo:ro": volumes need a name
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidParameter(_invalid_spec(raw))
    if not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    words = mode.split(",") if mode else []
    try:
        if any(w in PROPAGATION_MODES for w in words):
            raise InvalidParameter('invalid mount config for type "volume": field BindOptions '
                                   "must not be specified")
        _check_target(target)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{_invalid_spec(raw)}: {exc}") from None
    return VolumeSpec(
        name=source, destination=posixpath.normpath(target), rw=read_write(mode),
        mode=mode, driver=volume_driver, copy_data="nocopy" not in words,
    )


def _str_map(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidParameter(f"invalid mount config for type \"volume\": {field} must be an "
                               "object")
    return {str(k): str(v) for k, v in value.items()}


def parse_volume_mount(target: str, source: str, read_only: bool,
                       volume_options: Mapping[str, Any] | None,
                       other_options: tuple[str, ...] = ()) -> VolumeSpec:
    """A ``Mounts`` entry of type ``volume`` (``--mount type=volume,...``).

    ``other_options`` names option blocks of other mount types that were given
    (``BindOptions``...): dockerd refuses them on a volume mount."""
    if other_options:
        raise InvalidParameter(f'invalid mount config for type "volume": field '
                               f"{other_options[0]} must not be specified")
    _check_target(target)
    opts = volume_options or {}
    if opts.get("Subpath"):
        raise InvalidParameter('invalid mount config for type "volume": volume subpaths are '
                               "not supported by this engine")
    driver_config = opts.get("DriverConfig") or {}
    if not isinstance(driver_config, Mapping):
        raise InvalidParameter('invalid mount config for type "volume": DriverConfig must be '
                               "an object")
    return VolumeSpec(
        name=source, destination=posixpath.normpath(target), rw=not read_only, mode="",
        driver=str(driver_config.get("Name") or ""), copy_data=not opts.get("NoCopy"),
        driver_opts=_str_map(driver_config.get("Options"), "DriverConfig.Options"),
        labels=_str_map(opts.get("Labels"), "Labels"),
    )


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``container[:mode]`` -> (container, mode); dockerd's ``ParseVolumesFrom``."""
    if spec == "":
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    ident, _, mode = spec.partition(":")
    if mode == "":
        return ident, "rw"
    words = mode.split(",")
    if (not valid_mode(mode) or any(w in PROPAGATION_MODES for w in words)
            or any(w in COPY_MODES for w in words)):
        raise InvalidParameter(f"invalid mode: {mode}")
    return ident, mode


__all__ = ["VolumeSpec", "valid_mode", "read_write", "is_volume_bind", "parse_volume_bind",
           "parse_volume_mount", "parse_volumes_from"]
