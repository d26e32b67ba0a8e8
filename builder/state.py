"""The builder's state: the run config being built, build arguments, finished stages.

:class:`RunConfig` is Docker's ``container.Config`` as a frozen value (the image config's
``config`` section); steps derive new ones with :func:`dataclasses.replace`, the way
moby's dispatchers use ``copyRunConfig`` with modifiers. :class:`BuildArgs` keeps the
classic builder's ARG rules: which names a stage declared, defaults, values from
``--build-arg``, the proxy variables that are allowed without a declaration, and which
arguments were referenced (for the "were not consumed" warning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from builder.backend import ImageInfo


class HealthConfigDoc(TypedDict, total=False):
    Test: list[str]
    Interval: int
    Timeout: int
    StartPeriod: int
    StartInterval: int
    Retries: int


def _strs(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _keys(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return tuple(str(k) for k in value)
    return tuple(str(v) for v in value)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Docker's ``container.Config`` (None and empty stay distinct, as in Go).

    The same fields as ``runtime.containers.model.ContainerConfig`` (a test keeps them in
    step), but ``healthcheck`` stays the ``HealthConfig`` *document*: the builder writes it
    into image configs as it came (a base image's keys; the parser leaves unset options
    out, as dockerd's omitempty fields), and those bytes are the image ID, which a
    ``HealthConfig`` value that cannot tell an absent key from a zero one would change."""

    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    healthcheck: Mapping[str, Any] | None = None
    args_escaped: bool = False
    image: str = ""
    volumes: tuple[str, ...] | None = None
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    network_disabled: bool = False
    mac_address: str = ""
    on_build: tuple[str, ...] | None = None
    labels: Mapping[str, str] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None
    shell: tuple[str, ...] | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> RunConfig:
        """From an image config's ``config`` section (Docker key names)."""
        doc = doc or {}
        labels = doc.get("Labels")
        health = doc.get("Healthcheck")
        return cls(
            hostname=str(doc.get("Hostname") or ""),
            domainname=str(doc.get("Domainname") or ""),
            user=str(doc.get("User") or ""),
            attach_stdin=bool(doc.get("AttachStdin")),
            attach_stdout=bool(doc.get("AttachStdout")),
            attach_stderr=bool(doc.get("AttachStderr")),
            exposed_ports=_keys(doc.get("ExposedPorts")),
            tty=bool(doc.get("Tty")),
            open_stdin=bool(doc.get("OpenStdin")),
            stdin_once=bool(doc.get("StdinOnce")),
            env=_strs(doc.get("Env")),
            cmd=_strs(doc.get("Cmd")),
            healthcheck=dict(health) if isinstance(health, Mapping) else None,
            args_escaped=bool(doc.get("ArgsEscaped")),
            image=str(doc.get("Image") or ""),
            volumes=_keys(doc.get("Volumes")),
            working_dir=str(doc.get("WorkingDir") or ""),
            entrypoint=_strs(doc.get("Entrypoint")),
            network_disabled=bool(doc.get("NetworkDisabled")),
            mac_address=str(doc.get("MacAddress") or ""),
            on_build=_strs(doc.get("OnBuild")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else None,
            stop_signal=str(doc.get("StopSignal") or ""),
            stop_timeout=int(doc["StopTimeout"]) if doc.get("StopTimeout") is not None else None,
            shell=_strs(doc.get("Shell")),
        )

    def to_doc(self) -> dict[str, Any]:
        """Docker's JSON for this config, every field in ``container.Config`` order."""
        doc: dict[str, Any] = {
            "Hostname": self.hostname,
            "Domainname": self.domainname,
            "User": self.user,
            "AttachStdin": self.attach_stdin,
            "AttachStdout": self.attach_stdout,
            "AttachStderr": self.attach_stderr,
        }
        if self.exposed_ports:
            doc["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        doc.update({
            "Tty": self.tty,
            "OpenStdin": self.open_stdin,
            "StdinOnce": self.stdin_once,
            "Env": list(self.env) if self.env is not None else None,
            "Cmd": list(self.cmd) if self.cmd is not None else None,
        })
        if self.healthcheck is not None:
            doc["Healthcheck"] = dict(self.healthcheck)
        if self.args_escaped:
            doc["ArgsEscaped"] = True
        doc.update({
            "Image": self.image,
            "Volumes": {v: {} for v in sorted(self.volumes)} if self.volumes is not None else None,
            "WorkingDir": self.working_dir,
            "Entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
        })
        if self.network_disabled:
            doc["NetworkDisabled"] = True
        if self.mac_address:
            doc["MacAddress"] = self.mac_address
        doc["OnBuild"] = list(self.on_build) if self.on_build is not None else None
        doc["Labels"] = {k: self.labels[k] for k in sorted(self.labels)} if self.labels is not None else None
        if self.stop_signal:
            doc["StopSignal"] = self.stop_signal
        if self.stop_timeout is not None:
            doc["StopTimeout"] = self.stop_timeout
        if self.shell:
            doc["Shell"] = list(self.shell)
        return doc


def same_config(a: RunConfig, b: RunConfig) -> bool:
    """The image cache's comparison (moby ``image/cache.compare``): everything except the
    per-container Image, Hostname, Domainname and MacAddress; ports, volumes and labels as
    sets, lists in order."""
    if (a.env or ()) != (b.env or ()) or (a.cmd or ()) != (b.cmd or ()):
        return False
    if (a.entrypoint or ()) != (b.entrypoint or ()) or (a.shell or ()) != (b.shell or ()):
        return False
    if (a.on_build or ()) != (b.on_build or ()):
        return False
    if set(a.exposed_ports or ()) != set(b.exposed_ports or ()):
        return False
    if set(a.volumes or ()) != set(b.volumes or ()):
        return False
    if dict(a.labels or {}) != dict(b.labels or {}):
        return False
    scalars = ("attach_stdin", "attach_stdout", "attach_stderr", "network_disabled", "tty",
               "open_stdin", "stdin_once", "args_escaped", "user", "working_dir", "stop_signal",
               "stop_timeout")
    if any(getattr(a, name) != getattr(b, name) for name in scalars):
        return False
    if (a.healthcheck is None) != (b.healthcheck is None):
        return False
    if a.healthcheck is not None and b.healthcheck is not None:
        for key in ("Interval", "StartInterval", "StartPeriod", "Timeout", "Retries"):
            if (a.healthcheck.get(key) or 0) != (b.healthcheck.get(key) or 0):
                return False
        if list(a.healthcheck.get("Test") or ()) != list(b.healthcheck.get("Test") or ()):
            return False
    return True


# proxy variables: usable without an ARG declaration and left out of the history
BUILTIN_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


class BuildArgs:
    """Build arguments (moby ``BuildArgs``). ``from_options`` are ``--build-arg`` values;
    a None value means "named on the command line without a value"."""

    def __init__(self, from_options: Mapping[str, str | None] | None = None) -> None:
        self.from_options: dict[str, str | None] = dict(from_options or {})
        self.allowed: dict[str, str | None] = {}
        self.meta: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def clone(self) -> BuildArgs:
        other = BuildArgs(self.from_options)
        other.allowed = dict(self.allowed)
        other.meta = dict(self.meta)
        other.referenced = set(self.referenced)
        return other

    def reset_allowed(self) -> None:
        self.allowed = {}

    def merge_referenced(self, other: BuildArgs) -> None:
        self.referenced |= other.referenced

    def add_arg(self, key: str, value: str | None) -> None:
        self.allowed[key] = value
        self.referenced.add(key)

    def add_meta_arg(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def is_referenced_or_not_builtin(self, key: str) -> bool:
        return key in self.allowed or key not in BUILTIN_ARGS

    def _lookup(self, key: str, source: Mapping[str, str | None]) -> tuple[str, bool]:
        default = source.get(key)
        exists = key in source
        option = self.from_options.get(key)
        if option is not None:
            return option, True
        if default is None:
            meta = self.meta.get(key)
            if meta is not None:
                return meta, True
            return "", False
        return default, exists

    def _all_from(self, source: Mapping[str, str | None]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in [*source, *BUILTIN_ARGS]:
            value, ok = self._lookup(key, source)
            if ok:
                out[key] = value
        return out

    def all_allowed(self) -> dict[str, str]:
        return self._all_from(self.allowed)

    def all_meta(self) -> dict[str, str]:
        return self._all_from(self.meta)

    def filter_allowed(self, env: Sequence[str] | None) -> list[str]:
        """``KEY=value`` for allowed args that the environment does not already set."""
        set_keys = {e.partition("=")[0] for e in env or ()}
        return [f"{k}={v}" for k, v in self.all_allowed().items() if k not in set_keys]

    def unused(self) -> list[str]:
        """``--build-arg`` names no stage declared (proxy variables excepted), sorted."""
        return sorted(k for k in self.from_options if k not in self.referenced and k not in BUILTIN_ARGS)


@dataclass(slots=True)
class DispatchState:
    """What one stage's dispatchers read and change."""

    build_args: BuildArgs
    run_config: RunConfig = field(default_factory=RunConfig)
    maintainer: str = ""
    cmd_set: bool = False
    image_id: str = ""
    base_image: ImageInfo | None = None
    stage_name: str = ""
    os: str = "linux"

    @classmethod
    def new(cls, base_args: BuildArgs) -> DispatchState:
        args = base_args.clone()
        args.reset_allowed()
        return cls(build_args=args)

    def has_from_image(self) -> bool:
        return bool(self.image_id) or (self.base_image is not None and not self.base_image.id)

    def begin_stage(self, name: str, image: ImageInfo, default_path: str) -> None:
        self.stage_name = name
        self.image_id = image.id
        self.os = image.os or "linux"
        config = RunConfig.from_doc(image.config)
        env = list(config.env or ())
        if not any(e.partition("=")[0] == "PATH" for e in env):
            env.append("PATH=" + default_path)
        self.run_config = replace(config, env=tuple(env), open_stdin=False, stdin_once=False)
        self.base_image = image

    def update_run_config(self) -> None:
        self.run_config = replace(self.run_config, image=self.image_id)


class StageResults:
    """Finished stages by index and (lower-case) name, for ``FROM <stage>`` and
    ``COPY --from``."""

    def __init__(self) -> None:
        self.flat: list[RunConfig] = []
        self.indexed: dict[str, RunConfig] = {}

    def by_name(self, name: str) -> RunConfig | None:
        return self.indexed.get(name.lower())

    def get(self, name_or_index: str) -> RunConfig | None:
        """A stage by name, else by index; None when it names neither (an image)."""
        found = self.by_name(name_or_index)
        if found is not None:
            return found
        try:
            index = int(name_or_index, 10)
        except ValueError:
            return None
        if index == len(self.flat):
            raise ValueError("refers to current build stage")
        if index < 0 or index > len(self.flat):
            raise ValueError("index out of bounds")
        return self.flat[index]

    def check_name_available(self, name: str) -> None:
        if name and self.by_name(name) is not None:
            raise ValueError(f"{name} stage name already used")

    def commit(self, name: str, config: RunConfig) -> None:
        self.check_name_available(name)
        if name:
            self.indexed[name.lower()] = config
        self.flat.append(config)


__all__ = ["RunConfig", "HealthConfigDoc", "same_config", "BuildArgs", "BUILTIN_ARGS",
           "DispatchState", "StageResults"]
