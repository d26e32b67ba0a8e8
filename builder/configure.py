"""What an instruction that only changes configuration does to a stage's ``RunConfig``.

The one place where ``ENV``, ``LABEL``, ``EXPOSE``, ``WORKDIR``, ``STOPSIGNAL``, ``CMD`` ...
take effect: the build dispatcher (:mod:`builder.dispatch`) commits an image after each,
and :mod:`builder.changes` (``docker commit --change``, ``docker import --change``,
moby's ``BuildFromConfig``) applies them without committing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from builder import instructions as ins
from builder.errors import BuildStepError
from builder.shell import ShellLex, env_map
from builder.state import DispatchState, RunConfig
from runtime.gofmt import go_duration, go_list, go_quote, go_quote_list, go_quote_rune
from runtime.ports import expose_specs
from runtime.signals import parse_signal

DEFAULT_SHELL = ("/bin/sh", "-c")

CONFIG_COMMANDS = (
    ins.EnvCommand, ins.MaintainerCommand, ins.LabelCommand, ins.OnbuildCommand,
    ins.WorkdirCommand, ins.CmdCommand, ins.HealthCheckCommand, ins.EntrypointCommand,
    ins.ExposeCommand, ins.UserCommand, ins.VolumeCommand, ins.StopSignalCommand,
    ins.ArgCommand, ins.ShellCommand,
)
"""The instructions :func:`configure` applies (every one but FROM, RUN, COPY and ADD)."""


@dataclass(frozen=True, slots=True)
class Configured:
    """What the builder does next: commit with ``message`` (the history comment), after
    printing ``note`` when there is one (a HEALTHCHECK replacing another)."""

    message: str
    note: str = ""


def normalize_workdir(current: str, requested: str) -> str:
    """moby's ``normalizeWorkdir``: a relative WORKDIR is joined to the current one under
    ``/`` and cleaned; an absolute one is kept as written."""
    if not requested:
        raise BuildStepError("cannot normalize nothing")
    if requested.startswith("/"):
        return requested
    return posixpath.normpath(posixpath.join("/", current, requested)).replace("//", "/")


def health_text(health: Mapping[str, Any]) -> str:
    """``fmt.Sprintf("HEALTHCHECK %q", *HealthConfig)`` as dockerd 20.10 records it."""
    test = go_quote_list(list(health.get("Test") or []))
    parts = [test] + [go_quote(go_duration(int(health.get(k) or 0))) for k in ("Interval", "Timeout", "StartPeriod")]
    parts.append(go_quote_rune(int(health.get("Retries") or 0)))
    return "&{" + " ".join(parts) + "}"


def shell_of(config: RunConfig) -> tuple[str, ...]:
    return tuple(config.shell) if config.shell else DEFAULT_SHELL


def resolve_cmd_line(command: ins.ShellDependentCommand, config: RunConfig) -> tuple[str, ...] | None:
    if command.prepend_shell and command.cmd_line is not None:
        return (*shell_of(config), *command.cmd_line)
    return command.cmd_line


def environment(state: DispatchState) -> dict[str, str]:
    """The variables an instruction's words are expanded with: the config's ``Env`` and
    the build args in scope."""
    env = list(state.run_config.env or ())
    return env_map(env + state.build_args.filter_allowed(env))


def expanded(command: ins.Command, lex: ShellLex, env: Mapping[str, str]) -> ins.Command:
    """``command`` with ``$VAR`` expanded in the words its instruction expands."""
    expand: Callable[[Callable[[str], str]], ins.Command] | None = getattr(command, "expand", None)
    if expand is None:
        return command
    return expand(lambda word: lex.process_word(word, env))


def configure(state: DispatchState, c: ins.Command, lex: ShellLex, env: Mapping[str, str]) -> Configured:
    """Apply one of :data:`CONFIG_COMMANDS` (already :func:`expanded`) to ``state``."""
    rc = state.run_config
    if isinstance(c, ins.EnvCommand):
        entries = list(rc.env or ())
        message = "ENV"
        for kv in c.env:
            new = f"{kv.key}={kv.value}"
            message += " " + new
            for i, existing in enumerate(entries):
                if existing.partition("=")[0] == kv.key:
                    entries[i] = new
                    break
            else:
                entries.append(new)
        state.run_config = replace(rc, env=tuple(entries))
        return Configured(message)
    if isinstance(c, ins.MaintainerCommand):
        state.maintainer = c.maintainer
        return Configured("MAINTAINER " + c.maintainer)
    if isinstance(c, ins.LabelCommand):
        labels = dict(rc.labels or {})
        message = "LABEL"
        for kv in c.labels:
            labels[kv.key] = kv.value
            message += " " + str(kv)
        state.run_config = replace(rc, labels=labels)
        return Configured(message)
    if isinstance(c, ins.OnbuildCommand):
        state.run_config = replace(rc, on_build=(*(rc.on_build or ()), c.expression))
        return Configured("ONBUILD " + c.expression)
    if isinstance(c, ins.WorkdirCommand):
        state.run_config = rc = replace(rc, working_dir=normalize_workdir(rc.working_dir, c.path))
        return Configured("WORKDIR " + rc.working_dir)
    if isinstance(c, ins.CmdCommand):
        cmd = resolve_cmd_line(c, rc)
        state.run_config = replace(rc, cmd=cmd, args_escaped=False)
        if c.cmd_line:
            state.cmd_set = True
        return Configured(f"CMD {go_quote_list(cmd)}")
    if isinstance(c, ins.HealthCheckCommand):
        note = ""
        old_test = list((rc.healthcheck or {}).get("Test") or [])
        if old_test and old_test[0] != "NONE":
            note = f"Note: overriding previous HEALTHCHECK: {go_list(old_test)}\n"
        state.run_config = replace(rc, healthcheck=dict(c.health))
        return Configured("HEALTHCHECK " + health_text(c.health), note)
    if isinstance(c, ins.EntrypointCommand):
        entrypoint = resolve_cmd_line(c, rc)
        state.run_config = replace(rc, entrypoint=entrypoint, args_escaped=False,
                                   cmd=rc.cmd if state.cmd_set else None)
        return Configured(f"ENTRYPOINT {go_quote_list(entrypoint)}")
    if isinstance(c, ins.ExposeCommand):
        ports: list[str] = []
        for p in c.ports:
            ports += lex.process_words(p, env)
        exposed = list(rc.exposed_ports or ())
        exposed += [p for p in expose_specs(ports) if p not in exposed]
        state.run_config = replace(rc, exposed_ports=tuple(exposed))
        return Configured("EXPOSE " + " ".join(ports))
    if isinstance(c, ins.UserCommand):
        state.run_config = replace(rc, user=c.user)
        return Configured(f"USER {c.user}")
    if isinstance(c, ins.VolumeCommand):
        volumes = list(rc.volumes or ())
        for v in c.volumes:
            if not v:
                raise BuildStepError("VOLUME specified can not be an empty string")
            if v not in volumes:
                volumes.append(v)
        state.run_config = replace(rc, volumes=tuple(volumes))
        return Configured(f"VOLUME {go_list(c.volumes)}")
    if isinstance(c, ins.StopSignalCommand):
        parse_signal(c.signal)
        state.run_config = replace(rc, stop_signal=c.signal)
        return Configured(f"STOPSIGNAL {c.signal}")
    if isinstance(c, ins.ArgCommand):
        parts = []
        for arg in c.args:
            parts.append(arg.key if arg.value is None else f"{arg.key}={arg.value}")
            state.build_args.add_arg(arg.key, arg.value)
        return Configured("ARG " + " ".join(parts))
    if isinstance(c, ins.ShellCommand):
        state.run_config = replace(rc, shell=c.shell)
        return Configured(f"SHELL {go_list(c.shell)}")
    raise BuildStepError(f"unsupported command type: {type(c).__name__}")


__all__ = ["CONFIG_COMMANDS", "Configured", "DEFAULT_SHELL", "configure", "environment", "expanded",
           "health_text", "normalize_workdir", "resolve_cmd_line", "shell_of"]
