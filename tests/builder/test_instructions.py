"""Nodes to typed instructions and stages (builder.instructions)."""

from __future__ import annotations

import pytest

from builder import instructions as ins
from builder.errors import DockerfileParseError
from builder.parser import parse


def stages_of(text: str) -> tuple[list[ins.Stage], list[ins.ArgCommand]]:
    return ins.parse(parse(text).nodes)


def test_stages_meta_args_and_source_text() -> None:
    stages, meta = stages_of("ARG V=1\nFROM busybox:$V AS Build\nRUN  echo hi \nFROM build\nCMD x\n")
    assert [a.key for a in meta[0].args] == ["V"] and meta[0].args[0].value == "1"
    assert [(s.name, s.base_name, s.source_code) for s in stages] == [
        ("build", "busybox:$V", "FROM busybox:$V AS Build"), ("", "build", "FROM build")]
    run = stages[0].commands[0]
    assert isinstance(run, ins.RunCommand) and str(run) == "RUN  echo hi" and run.line == 3
    assert run.cmd_line == ("echo hi",) and run.prepend_shell


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nFOO bar", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM a\nENV", "dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nCOPY x", "dockerfile parse error line 2: COPY requires at least two arguments, but only one was "
                       "provided. Destination could not be determined"),
    ("FROM a b", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a AS 1x", 'dockerfile parse error line 1: invalid name for build stage: "1x", name can\'t start with a '
                     "number or contain symbols"),
    ("FROM a\nCOPY --bogus=1 a b", "dockerfile parse error line 2: Unknown flag: bogus"),
    ("FROM a\nCOPY --from a b", "dockerfile parse error line 2: Missing a value on flag: from"),
    ("FROM a\nCOPY --from=x --from=y a b", "dockerfile parse error line 2: Duplicate flag specified: from"),
    ("FROM a\nWORKDIR", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM a\nHEALTHCHECK --interval=1ns CMD x",
     'dockerfile parse error line 2: Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --retries=0 CMD x", "dockerfile parse error line 2: --retries must be at least 1 (not 0)"),
    ("FROM a\nHEALTHCHECK FOO x", 'dockerfile parse error line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK NONE x", "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nONBUILD FROM b", "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nSHELL sh -c", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nARG =x", "dockerfile parse error line 2: ARG names can not be blank"),
    ("RUN x", "no build stage in current context"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileParseError) as info:
        stages_of(text)
    assert str(info.value) == message


def test_healthcheck_values() -> None:
    (stage,), _ = stages_of("FROM a\nHEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl x\n"
                            'HEALTHCHECK CMD ["a", "b"]\nHEALTHCHECK none')
    shell, exec_, none = stage.commands
    assert isinstance(shell, ins.HealthCheckCommand)
    assert shell.health == {"Test": ["CMD-SHELL", "curl x"], "Interval": 90_000_000_000, "Timeout": 500_000_000,
                            "Retries": 3}  # zero options are left out, as dockerd's omitempty fields
    assert isinstance(exec_, ins.HealthCheckCommand) and exec_.health["Test"] == ["CMD", "a", "b"]
    assert isinstance(none, ins.HealthCheckCommand) and none.health == {"Test": ["NONE"]}


def test_run_mount_flag_is_recorded_not_refused() -> None:
    (stage,), _ = stages_of("FROM a\nRUN --mount=type=cache,target=/x true")
    run = stage.commands[0]
    assert isinstance(run, ins.RunCommand) and run.flags_used == ("mount",)


def test_expansion_covers_dockerd_fields_only() -> None:
    (stage,), _ = stages_of("FROM a\nCOPY --from=$S --chown=$U $SRC $DST\nWORKDIR $W\nUSER $U\nENV $K=$V\n"
                            "ARG $K=$V\nVOLUME $W\nSTOPSIGNAL $S\nLABEL $K=$V")
    env = {"S": "s", "U": "u", "SRC": "src", "DST": "/dst", "W": "/w", "K": "k", "V": "v"}

    def fn(word: str) -> str:
        out = word
        for key, value in sorted(env.items(), key=lambda kv: -len(kv[0])):
            out = out.replace("$" + key, value)
        return out

    copy, workdir, user, env_cmd, arg, volume, signal, label = [c.expand(fn) for c in stage.commands]  # type: ignore[union-attr]
    assert copy.from_ == "$S" and copy.chown == "u" and copy.sources_and_dest == ("src", "/dst")
    assert workdir.path == "/w" and user.user == "u" and volume.volumes == ("/w",) and signal.signal == "s"
    assert env_cmd.env == (ins.KeyValue("k", "v"),) and label.labels == (ins.KeyValue("k", "v"),)
    assert arg.args == (ins.KeyValueOptional("k", "v"),)


def test_onbuild_keeps_the_original_text() -> None:
    (stage,), _ = stages_of("FROM a\n  onbuild   RUN echo ${X}")
    onbuild = stage.commands[0]
    assert isinstance(onbuild, ins.OnbuildCommand) and onbuild.expression == "RUN echo ${X}"


def test_expose_ports_are_sorted_and_entrypoint_empty_is_none() -> None:
    (stage,), _ = stages_of("FROM a\nEXPOSE 90 80/udp 443\nENTRYPOINT []\nCMD []")
    expose, entrypoint, cmd = stage.commands
    assert isinstance(expose, ins.ExposeCommand) and expose.ports == ("443", "80/udp", "90")
    assert isinstance(entrypoint, ins.EntrypointCommand) and entrypoint.cmd_line is None
    assert isinstance(cmd, ins.CmdCommand) and cmd.cmd_line == ()


def test_find_stage_is_case_insensitive() -> None:
    stages, _ = stages_of("FROM a AS one\nFROM b AS Two")
    assert ins.find_stage(stages, "TWO") == 1 and ins.find_stage(stages, "three") is None
