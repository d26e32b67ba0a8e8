"""Parsed nodes to typed instructions, grouped into build stages.

Each instruction is a frozen dataclass that keeps its source text (``code``, printed as
``Step n/m : <code>``) and its line. Instructions whose words are expanded with the
build environment before they run implement ``expand(fn)``, returning a new instance;
which fields are expanded follows the classic builder exactly (``COPY --from`` is not,
``ADD``'s sources and ``--chown`` are). Errors carry dockerd's texts, prefixed with
``dockerfile parse error line N:`` where dockerd adds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from builder.errors import DockerfileParseError
from runtime.gofmt import go_quote, parse_go_duration
from builder.parser import Node

Expander = Callable[[str], str]

MIN_HEALTH_DURATION = 1_000_000  # container.MinimumDuration (1ms)
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_\.]*$")


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True, slots=True)
class KeyValueOptional:
    key: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Instruction:
    """Common part: ``name`` is the lower-case keyword, ``code`` the trimmed source."""

    name: str
    code: str
    line: int

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class EnvCommand(Instruction):
    env: tuple[KeyValue, ...] = ()

    def expand(self, fn: Expander) -> EnvCommand:
        return replace(self, env=tuple(KeyValue(fn(kv.key), fn(kv.value)) for kv in self.env))


@dataclass(frozen=True, slots=True)
class MaintainerCommand(Instruction):
    maintainer: str = ""


@dataclass(frozen=True, slots=True)
class LabelCommand(Instruction):
    labels: tuple[KeyValue, ...] = ()
    no_expand: bool = False

    def expand(self, fn: Expander) -> LabelCommand:
        if self.no_expand:
            return self
        return replace(self, labels=tuple(KeyValue(fn(kv.key), fn(kv.value)) for kv in self.labels))


class _SourcesAndDest:
    """ADD and COPY: ``sources_and_dest`` ends with the destination."""

    __slots__ = ()
    sources_and_dest: tuple[str, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return self.sources_and_dest[:-1]

    @property
    def dest(self) -> str:
        return self.sources_and_dest[-1]


@dataclass(frozen=True, slots=True)
class AddCommand(_SourcesAndDest, Instruction):
    sources_and_dest: tuple[str, ...] = ()
    chown: str = ""
    chmod: str = ""

    def expand(self, fn: Expander) -> AddCommand:
        return replace(self, chown=fn(self.chown), sources_and_dest=tuple(fn(s) for s in self.sources_and_dest))


@dataclass(frozen=True, slots=True)
class CopyCommand(_SourcesAndDest, Instruction):
    sources_and_dest: tuple[str, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""

    def expand(self, fn: Expander) -> CopyCommand:
        return replace(self, chown=fn(self.chown), sources_and_dest=tuple(fn(s) for s in self.sources_and_dest))


@dataclass(frozen=True, slots=True)
class OnbuildCommand(Instruction):
    expression: str = ""


@dataclass(frozen=True, slots=True)
class WorkdirCommand(Instruction):
    path: str = ""

    def expand(self, fn: Expander) -> WorkdirCommand:
        return replace(self, path=fn(self.path))


@dataclass(frozen=True, slots=True)
class ShellDependentCommand(Instruction):
    """RUN/CMD/ENTRYPOINT: ``cmd_line`` is the exec-form argv, or one string in shell form
    (``prepend_shell``). None only for an empty ENTRYPOINT."""

    cmd_line: tuple[str, ...] | None = ()
    prepend_shell: bool = True


@dataclass(frozen=True, slots=True)
class RunCommand(ShellDependentCommand):
    flags_used: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CmdCommand(ShellDependentCommand):
    pass


@dataclass(frozen=True, slots=True)
class EntrypointCommand(ShellDependentCommand):
    pass


@dataclass(frozen=True, slots=True)
class HealthCheckCommand(Instruction):
    """``health`` is Docker's ``HealthConfig`` JSON: Test, Interval, Timeout, StartPeriod
    (nanoseconds) and Retries."""

    health: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExposeCommand(Instruction):
    ports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserCommand(Instruction):
    user: str = ""

    def expand(self, fn: Expander) -> UserCommand:
        return replace(self, user=fn(self.user))


@dataclass(frozen=True, slots=True)
class VolumeCommand(Instruction):
    volumes: tuple[str, ...] = ()

    def expand(self, fn: Expander) -> VolumeCommand:
        return replace(self, volumes=tuple(fn(v) for v in self.volumes))


@dataclass(frozen=True, slots=True)
class StopSignalCommand(Instruction):
    signal: str = ""

    def expand(self, fn: Expander) -> StopSignalCommand:
        return replace(self, signal=fn(self.signal))


@dataclass(frozen=True, slots=True)
class ArgCommand(Instruction):
    args: tuple[KeyValueOptional, ...] = ()

    def expand(self, fn: Expander) -> ArgCommand:
        return replace(self, args=tuple(
            KeyValueOptional(fn(a.key), fn(a.value) if a.value is not None else None) for a in self.args))


@dataclass(frozen=True, slots=True)
class ShellCommand(Instruction):
    shell: tuple[str, ...] = ()


Command: TypeAlias = (
    EnvCommand | MaintainerCommand | LabelCommand | AddCommand | CopyCommand | OnbuildCommand
    | WorkdirCommand | RunCommand | CmdCommand | EntrypointCommand | HealthCheckCommand
    | ExposeCommand | UserCommand | VolumeCommand | StopSignalCommand | ArgCommand | ShellCommand
)


@dataclass(slots=True)
class Stage:
    """One ``FROM`` and the instructions up to the next one."""

    name: str
    base_name: str
    source_code: str
    platform: str = ""
    line: int = 0
    commands: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        return self.source_code


def new_label_command(key: str, value: str) -> LabelCommand:
    """A ``LABEL`` from ``--label`` (never expanded), as dockerd appends it."""
    return LabelCommand(name="label", code=f"LABEL {key}={value}", line=0,
                        labels=(KeyValue(key, value),), no_expand=True)


# ---- flags --------------------------------------------------------------------------------


class _Flags:
    """BuildKit's BFlags: ``--name=value`` words; unknown, duplicate or malformed ones fail."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.known: dict[str, str] = {}  # name -> "string" | "bool"
        self.values: dict[str, str] = {}
        self.used: list[str] = []

    def add_string(self, name: str, default: str = "") -> None:
        self.known[name] = "string"
        self.values[name] = default

    def add_strings(self, name: str) -> None:
        self.known[name] = "strings"
        self.values[name] = ""

    def parse(self) -> None:
        for arg in self.args:
            if not arg.startswith("--"):
                raise DockerfileParseError(f"Arg should start with -- : {arg}")
            if arg == "--":
                return
            body = arg[2:]
            name, eq, value = body.partition("=")
            if name not in self.known:
                raise DockerfileParseError(f"Unknown flag: {name}")
            if name in self.used and self.known[name] != "strings":
                raise DockerfileParseError(f"Duplicate flag specified: {name}")
            if name not in self.used:
                self.used.append(name)
            if not eq:
                raise DockerfileParseError(f"Missing a value on flag: {name}")
            self.values[name] = value


# ---- node -> instruction ------------------------------------------------------------------


def _base(node: Node) -> dict[str, Any]:
    return {"name": node.value, "code": node.original.strip(), "line": node.start_line}


def _kvps(args: Sequence[str], command: str) -> tuple[KeyValue, ...]:
    if not args:
        raise DockerfileParseError(f"{command} requires at least one argument")
    if len(args) % 2:
        raise DockerfileParseError(f"Bad input to {command}, too many arguments")
    out: list[KeyValue] = []
    for i in range(0, len(args), 2):
        if not args[i]:
            raise DockerfileParseError(f"{command} names can not be blank")
        out.append(KeyValue(args[i], args[i + 1]))
    return tuple(out)


def _handle_json_args(args: Sequence[str], is_json: bool) -> tuple[str, ...]:
    if not args:
        return ()
    if is_json:
        return tuple(args)
    return (" ".join(args),)


def _no_flags(node: Node) -> None:
    _Flags(node.flags).parse()


def _parse_env(node: Node) -> EnvCommand:
    _no_flags(node)
    return EnvCommand(**_base(node), env=_kvps(node.all_args, "ENV"))


def _parse_maintainer(node: Node) -> MaintainerCommand:
    if len(node.all_args) != 1:
        raise DockerfileParseError("MAINTAINER requires exactly one argument")
    _no_flags(node)
    return MaintainerCommand(**_base(node), maintainer=node.all_args[0])


def _parse_label(node: Node) -> LabelCommand:
    _no_flags(node)
    return LabelCommand(**_base(node), labels=_kvps(node.all_args, "LABEL"))


def _no_destination(command: str) -> DockerfileParseError:
    return DockerfileParseError(
        f"{command} requires at least two arguments, but only one was provided. Destination could not be determined")


def _parse_add(node: Node) -> AddCommand:
    if len(node.all_args) < 2:
        raise _no_destination("ADD")
    flags = _Flags(node.flags)
    flags.add_string("chown")
    flags.add_string("chmod")
    flags.parse()
    return AddCommand(**_base(node), sources_and_dest=node.all_args,
                      chown=flags.values["chown"], chmod=flags.values["chmod"])


def _parse_copy(node: Node) -> CopyCommand:
    if len(node.all_args) < 2:
        raise _no_destination("COPY")
    flags = _Flags(node.flags)
    flags.add_string("chown")
    flags.add_string("from")
    flags.add_string("chmod")
    flags.parse()
    return CopyCommand(**_base(node), sources_and_dest=node.all_args, from_=flags.values["from"],
                       chown=flags.values["chown"], chmod=flags.values["chmod"])


def _parse_from(node: Node) -> Stage:
    args = node.all_args
    stage_name = ""
    if len(args) == 3 and args[1].lower() == "as":
        stage_name = args[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise DockerfileParseError(
                f"invalid name for build stage: {go_quote(args[2])}, name can't start with a number or contain symbols")
    elif len(args) != 1:
        raise DockerfileParseError("FROM requires either one or three arguments")
    flags = _Flags(node.flags)
    flags.add_string("platform")
    flags.parse()
    return Stage(name=stage_name, base_name=args[0], source_code=node.original.strip(),
                 platform=flags.values["platform"], line=node.start_line)


_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")


def _parse_onbuild(node: Node) -> OnbuildCommand:
    args = node.all_args
    if not args:
        raise DockerfileParseError("ONBUILD requires at least one argument")
    _no_flags(node)
    trigger = args[0].strip().upper()
    if trigger == "ONBUILD":
        raise DockerfileParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise DockerfileParseError(f"{trigger} isn't allowed as an ONBUILD trigger")
    return OnbuildCommand(**_base(node), expression=_ONBUILD_PREFIX.sub("", node.original, count=1))


def _parse_workdir(node: Node) -> WorkdirCommand:
    if len(node.all_args) != 1:
        raise DockerfileParseError("WORKDIR requires exactly one argument")
    _no_flags(node)
    return WorkdirCommand(**_base(node), path=node.all_args[0])


def _shell_dependent(node: Node, empty_as_none: bool) -> dict[str, Any]:
    cmd: tuple[str, ...] | None = _handle_json_args(node.all_args, node.json)
    if empty_as_none and not cmd:
        cmd = None
    return {"cmd_line": cmd, "prepend_shell": not node.json}


def _parse_run(node: Node) -> RunCommand:
    # --mount is parsed (so dispatch can say it needs BuildKit, as dockerd does); other
    # BuildKit RUN flags are unknown to the classic parser
    flags = _Flags(node.flags)
    flags.add_strings("mount")
    flags.parse()
    return RunCommand(**_base(node), **_shell_dependent(node, False), flags_used=tuple(flags.used))


def _parse_cmd(node: Node) -> CmdCommand:
    _no_flags(node)
    return CmdCommand(**_base(node), **_shell_dependent(node, False))


def _parse_entrypoint(node: Node) -> EntrypointCommand:
    _no_flags(node)
    return EntrypointCommand(**_base(node), **_shell_dependent(node, True))


def _duration_flag(flags: _Flags, name: str) -> int:
    text = flags.values[name]
    if not text:
        return 0
    try:
        value = parse_go_duration(text)
    except ValueError as exc:
        raise DockerfileParseError(str(exc)) from None
    if value < MIN_HEALTH_DURATION:
        raise DockerfileParseError(f"Interval {go_quote(name)} cannot be less than 1ms")
    return value


def _parse_healthcheck(node: Node) -> HealthCheckCommand:
    args = node.all_args
    if not args:
        raise DockerfileParseError("HEALTHCHECK requires at least one argument")
    kind = args[0].upper()
    rest = args[1:]
    if kind == "NONE":
        if rest:
            raise DockerfileParseError("HEALTHCHECK NONE takes no arguments")
        return HealthCheckCommand(**_base(node), health={"Test": ["NONE"]})
    flags = _Flags(node.flags)
    for name in ("interval", "timeout", "start-period", "start-interval", "retries"):
        flags.add_string(name)
    flags.parse()
    if kind != "CMD":
        raise DockerfileParseError(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    cmd = _handle_json_args(rest, node.json)
    if not cmd:
        raise DockerfileParseError("Missing command after HEALTHCHECK CMD")
    test = ["CMD" if node.json else "CMD-SHELL", *cmd]
    # dockerd's HealthConfig: every option is omitempty, so an unset (zero) one is left out
    health: dict[str, Any] = {"Test": test}
    for key, flag in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start-period"),
                      ("StartInterval", "start-interval")):
        value = _duration_flag(flags, flag)
        if value:
            health[key] = value
    retries_text = flags.values["retries"]
    retries = 0
    if retries_text:
        try:
            retries = int(retries_text, 10)
        except ValueError:
            raise DockerfileParseError(f'strconv.ParseInt: parsing {go_quote(retries_text)}: invalid syntax') from None
        if retries < 1:
            raise DockerfileParseError(f"--retries must be at least 1 (not {retries})")
    if retries:
        health["Retries"] = retries
    return HealthCheckCommand(**_base(node), health=health)


def _parse_expose(node: Node) -> ExposeCommand:
    if not node.all_args:
        raise DockerfileParseError("EXPOSE requires at least one argument")
    _no_flags(node)
    return ExposeCommand(**_base(node), ports=tuple(sorted(node.all_args)))


def _parse_user(node: Node) -> UserCommand:
    if len(node.all_args) != 1:
        raise DockerfileParseError("USER requires exactly one argument")
    _no_flags(node)
    return UserCommand(**_base(node), user=node.all_args[0])


def _parse_volume(node: Node) -> VolumeCommand:
    if not node.all_args:
        raise DockerfileParseError("VOLUME requires at least one argument")
    _no_flags(node)
    volumes = []
    for v in node.all_args:
        v = v.strip()
        if not v:
            raise DockerfileParseError("VOLUME specified can not be an empty string")
        volumes.append(v)
    return VolumeCommand(**_base(node), volumes=tuple(volumes))


def _parse_stopsignal(node: Node) -> StopSignalCommand:
    if len(node.all_args) != 1:
        raise DockerfileParseError("STOPSIGNAL requires exactly one argument")
    return StopSignalCommand(**_base(node), signal=node.all_args[0])


def _parse_arg(node: Node) -> ArgCommand:
    if not node.all_args:
        raise DockerfileParseError("ARG requires at least one argument")
    pairs: list[KeyValueOptional] = []
    for arg in node.all_args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            if not key:
                raise DockerfileParseError("ARG names can not be blank")
            pairs.append(KeyValueOptional(key, value))
        else:
            pairs.append(KeyValueOptional(arg))
    return ArgCommand(**_base(node), args=tuple(pairs))


def _parse_shell(node: Node) -> ShellCommand:
    _no_flags(node)
    shell = _handle_json_args(node.all_args, node.json)
    if not shell:
        raise DockerfileParseError("SHELL requires at least one argument")
    if not node.json:
        raise DockerfileParseError("SHELL requires the arguments to be in JSON form")
    return ShellCommand(**_base(node), shell=shell)


_PARSERS: dict[str, Callable[[Node], Any]] = {
    "env": _parse_env, "maintainer": _parse_maintainer, "label": _parse_label,
    "add": _parse_add, "copy": _parse_copy, "from": _parse_from, "onbuild": _parse_onbuild,
    "workdir": _parse_workdir, "run": _parse_run, "cmd": _parse_cmd,
    "healthcheck": _parse_healthcheck, "entrypoint": _parse_entrypoint,
    "expose": _parse_expose, "user": _parse_user, "volume": _parse_volume,
    "stopsignal": _parse_stopsignal, "arg": _parse_arg, "shell": _parse_shell,
}


def parse_instruction(node: Node) -> Command | Stage:
    """One node as an instruction (a :class:`Stage` for ``FROM``). Errors are raised
    without the line prefix; :func:`parse` adds it."""
    parser = _PARSERS.get(node.value)
    if parser is None:
        raise DockerfileParseError(f"unknown instruction: {node.value.upper()}")
    result: Command | Stage = parser(node)
    return result


def parse_command(node: Node) -> Command:
    """An ONBUILD trigger: any instruction but FROM."""
    result = parse_instruction(node)
    if isinstance(result, Stage):
        raise DockerfileParseError(f"{type(result).__name__} is not a command type")
    return result


def parse(nodes: Sequence[Node]) -> tuple[list[Stage], list[ArgCommand]]:
    """The build stages, and the ``ARG`` instructions before the first ``FROM``."""
    stages: list[Stage] = []
    meta_args: list[ArgCommand] = []
    for node in nodes:
        try:
            result = parse_instruction(node)
        except DockerfileParseError as exc:
            raise DockerfileParseError(f"dockerfile parse error line {node.start_line}: {exc}") from None
        if not stages and isinstance(result, ArgCommand):
            meta_args.append(result)
            continue
        if isinstance(result, Stage):
            stages.append(result)
            continue
        if not stages:
            raise DockerfileParseError("no build stage in current context")
        stages[-1].commands.append(result)
    return stages, meta_args


def find_stage(stages: Sequence[Stage], name: str) -> int | None:
    """Index of the stage called ``name`` (case-insensitive), as ``--target`` looks it up."""
    for index, stage in enumerate(stages):
        if stage.name.lower() == name.lower():
            return index
    return None


__all__ = [
    "KeyValue", "KeyValueOptional", "Instruction", "EnvCommand", "MaintainerCommand",
    "LabelCommand", "AddCommand", "CopyCommand", "OnbuildCommand", "WorkdirCommand",
    "ShellDependentCommand", "RunCommand", "CmdCommand", "EntrypointCommand",
    "HealthCheckCommand", "ExposeCommand", "UserCommand", "VolumeCommand",
    "StopSignalCommand", "ArgCommand", "ShellCommand", "Command", "Stage", "new_label_command",
    "parse_instruction", "parse_command", "parse", "find_stage",
]
