"""Whole builds (builder.builder + builder.dispatch) against an in-memory BuildRuntime."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.builder import BuildRequest, build, prepare
from builder.errors import BuildStepError, CommandFailed, DockerfileParseError
from runtime.errors import InvalidParameter, SystemError_
from tests.builder.fakes import FakeRuntime, RecordingOutput

BASE_CONFIG = {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"]}


def context_tar(files: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            raw = data.encode() if isinstance(data, str) else data
            info.size = len(raw)
            info.mode = 0o644
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


@pytest.fixture
def runtime(tmp_path: Path) -> FakeRuntime:
    rt = FakeRuntime(tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    rt.add_image("busybox:latest", BASE_CONFIG, {"etc/passwd": b"root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
                                                 "etc/group": b"root:x:0:\nnogroup:x:65534:\n", "bin/": b""})
    return rt


async def run_build(runtime: FakeRuntime, dockerfile: str, files: Mapping[str, bytes | str] | None = None,
                    **options: Any) -> tuple[str, RecordingOutput]:
    request = BuildRequest(**options)
    tar = context_tar({"Dockerfile": dockerfile, **(files or {})})
    context, parsed = await prepare(runtime, request, io.BytesIO(tar))
    out = RecordingOutput()
    try:
        image_id = await build(runtime, request, context, parsed, out)
    finally:
        context.close()
    return image_id, out


def normalized(text: str) -> str:
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)


async def test_output_matches_dockerd(runtime: FakeRuntime) -> None:
    image_id, out = await run_build(runtime, "FROM busybox\nENV A=1\nRUN echo hi\n", tags=("demo",))
    assert normalized(out.text) == (
        "Step 1/3 : FROM busybox\n ---> <id>\n"
        "Step 2/3 : ENV A=1\n ---> Running in <id>\nRemoving intermediate container <id>\n ---> <id>\n"
        "Step 3/3 : RUN echo hi\n ---> Running in <id>\nRemoving intermediate container <id>\n ---> <id>\n"
        "Successfully built <id>\nSuccessfully tagged demo:latest\n")
    assert out.auxes == [{"ID": image_id}]
    assert f"Successfully built {image_id[7:19]}" in out.text
    assert runtime.tags["demo:latest"] == image_id
    assert not runtime.containers  # all intermediate containers removed (rm defaults to true)


async def test_history_and_config_like_dockerd(runtime: FakeRuntime) -> None:
    image_id, _ = await run_build(runtime, 'FROM busybox\nLABEL a=b\nCMD ["sh", "-c", "x"]\nWORKDIR /w\n'
                                           "EXPOSE 80 90/udp\nVOLUME /v\nUSER nobody\nSTOPSIGNAL SIGKILL\n"
                                           "ENTRYPOINT echo\nSHELL [\"/bin/bash\", \"-c\"]\nMAINTAINER me\n")
    assert runtime.history(image_id) == [
        "/bin/bash -c #(nop)  MAINTAINER me",
        "/bin/bash -c #(nop)  SHELL [/bin/bash -c]",  # recorded with the new shell, as dockerd does
        '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh" "-c" "echo"]',
        "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL",
        "/bin/sh -c #(nop)  USER nobody",
        "/bin/sh -c #(nop)  VOLUME [/v]",
        "/bin/sh -c #(nop)  EXPOSE 80 90/udp",
        "/bin/sh -c #(nop) WORKDIR /w",
        '/bin/sh -c #(nop)  CMD ["sh" "-c" "x"]',
        "/bin/sh -c #(nop)  LABEL a=b",
    ]
    image = runtime.images[image_id]
    config = image.config
    assert config["Cmd"] == ["sh", "-c", "x"]  # set by CMD in this stage, so ENTRYPOINT keeps it
    assert config["Entrypoint"] == ["/bin/sh", "-c", "echo"] and config["User"] == "nobody"
    assert config["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}} and config["Volumes"] == {"/v": {}}
    assert config["WorkingDir"] == "/w" and config["StopSignal"] == "SIGKILL" and config["Labels"] == {"a": "b"}
    assert config["Shell"] == ["/bin/bash", "-c"] and image.author == "me"
    assert config["Image"] == image.parent  # the previous step's image, as dockerd records it


async def test_cmd_set_in_stage_survives_entrypoint(runtime: FakeRuntime) -> None:
    image_id, _ = await run_build(runtime, 'FROM busybox\nCMD ["a"]\nENTRYPOINT ["b"]\n')
    assert runtime.images[image_id].config["Cmd"] == ["a"]
    image_id, _ = await run_build(runtime, 'FROM busybox\nENTRYPOINT ["b"]\n')
    assert runtime.images[image_id].config["Cmd"] is None  # the base image's CMD is dropped


async def test_default_path_is_added(runtime: FakeRuntime) -> None:
    runtime.add_image("nopath", {"Cmd": ["x"]})
    image_id, _ = await run_build(runtime, "FROM nopath\nLABEL a=b\n")
    assert runtime.images[image_id].config["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


async def test_second_build_uses_cache(runtime: FakeRuntime) -> None:
    dockerfile = "FROM busybox\nENV A=1\nRUN echo hi\nCOPY f /f\n"
    first, _ = await run_build(runtime, dockerfile, {"f": "data"})
    containers = len(runtime.created)
    second, out = await run_build(runtime, dockerfile, {"f": "data"})
    assert second == first and out.text.count(" ---> Using cache\n") == 3
    assert len(runtime.created) == containers  # nothing ran
    third, out = await run_build(runtime, dockerfile, {"f": "changed"})
    assert third != first and out.text.count(" ---> Using cache\n") == 2  # COPY's checksum differs
    fourth, out = await run_build(runtime, dockerfile, {"f": "data"}, no_cache=True)
    assert fourth != first and "Using cache" not in out.text


async def test_cache_from_limits_reuse_to_the_given_images_and_their_parents(runtime: FakeRuntime) -> None:
    dockerfile = "FROM busybox\nENV A=1\nRUN touch baz\nRUN touch bax\n"
    first, _ = await run_build(runtime, dockerfile)
    runtime.tags["build1"] = first
    same, out = await run_build(runtime, dockerfile, cache_from=("build1",))
    assert same == first and out.text.count(" ---> Using cache\n") == 3
    # a missing name is skipped, and with no source left nothing local is reused
    other, out = await run_build(runtime, dockerfile, cache_from=("nosuchtag",))
    assert other != first and "Using cache" not in out.text
    # a source that is only an ancestor: its steps are reused, the rest is built
    ancestor = runtime.images[first].parent
    runtime.tags["half"] = ancestor
    _, out = await run_build(runtime, dockerfile, cache_from=("half",))
    assert out.text.count(" ---> Using cache\n") == 2


async def test_cache_busts_for_the_rest_of_the_stage(runtime: FakeRuntime) -> None:
    await run_build(runtime, "FROM busybox\nENV A=1\nENV B=2\n")
    _, out = await run_build(runtime, "FROM busybox\nENV A=changed\nENV B=2\n")
    assert "Using cache" not in out.text


async def test_run_failure_reports_code_and_keeps_container(tmp_path: Path, runtime: FakeRuntime) -> None:
    runtime.script = lambda config: (3, [("stdout", b"out\n"), ("stderr", b"bad\n")], {})
    with pytest.raises(CommandFailed) as info:
        await run_build(runtime, "FROM busybox\nRUN exit 3\n")
    assert str(info.value) == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert info.value.code == 3
    assert len(runtime.containers) == 1  # like dockerd, --rm keeps the failed step's container


async def test_force_rm_removes_failed_containers(runtime: FakeRuntime) -> None:
    runtime.script = lambda config: (1, [], {})
    with pytest.raises(CommandFailed):
        await run_build(runtime, "FROM busybox\nRUN false\n", force_remove=True)
    assert not runtime.containers


async def test_rm_false_keeps_containers(runtime: FakeRuntime) -> None:
    _, out = await run_build(runtime, "FROM busybox\nENV A=1\nRUN true\n", remove=False)
    assert len(runtime.containers) == 2 and "Removing intermediate container" not in out.text


async def test_run_output_streams_and_env(runtime: FakeRuntime) -> None:
    seen: list[dict[str, Any]] = []

    def script(config: Mapping[str, Any]) -> tuple[int, list[tuple[str, bytes]], dict[str, bytes]]:
        seen.append(dict(config))
        return 0, [("stdout", b"hello \xe2"), ("stdout", b"\x82\xac\n"), ("stderr", b"warn\n")], {"out": b"x"}

    runtime.script = script
    image_id, out = await run_build(runtime, "FROM busybox\nARG V=1\nARG HTTP_PROXY\nRUN echo $V\n",
                                    build_args={"HTTP_PROXY": "http://proxy", "UNUSED": "x"})
    assert ("stdout", "hello ") in out.events and ("stdout", "€\n") in out.events and ("stderr", "warn\n") in out.events
    config = seen[0]
    assert config["Cmd"] == ["/bin/sh", "-c", "echo $V"] and config["Entrypoint"] == [""]
    assert "V=1" in config["Env"] and "HTTP_PROXY=http://proxy" in config["Env"]
    assert config["Healthcheck"] == {"Test": ["NONE"]}
    history = runtime.history(image_id)
    assert history[0] == "|2 HTTP_PROXY=http://proxy V=1 /bin/sh -c echo $V"
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in out.text
    assert runtime.images[image_id].files["out"] == b"x"


async def test_undeclared_proxy_args_are_usable_but_not_recorded(runtime: FakeRuntime) -> None:
    image_id, out = await run_build(runtime, "FROM busybox\nRUN env\n", build_args={"HTTP_PROXY": "p"})
    assert runtime.history(image_id)[0] == "|0 /bin/sh -c env"
    assert "not consumed" not in out.text


async def test_multi_stage_copy_from_and_aux_per_stage(runtime: FakeRuntime) -> None:
    runtime.script = lambda config: (0, [], {"artifact": b"built"})
    image_id, out = await run_build(runtime, "FROM busybox AS build\nRUN make\nFROM busybox\n"
                                             "COPY --from=build /artifact /app/\nCOPY --from=0 /artifact /again\n")
    assert len(out.auxes) == 2 and out.auxes[-1] == {"ID": image_id}
    files = runtime.images[image_id].files
    assert files["app/artifact"] == b"built" and files["again"] == b"built"
    assert runtime.layers_open == 0


async def test_target_and_labels(runtime: FakeRuntime) -> None:
    image_id, out = await run_build(runtime, "FROM busybox AS a\nENV S=a\nFROM busybox AS b\nENV S=b\n",
                                    target="A", labels={"z": "1", "k": "v v"})
    config = runtime.images[image_id].config
    assert "S=a" in config["Env"] and config["Labels"] == {"k": "v v", "z": "1"}
    assert "Step 3/4 : LABEL k=v v\n" in out.text and "Step 4/4 : LABEL z=1\n" in out.text


async def test_missing_target(runtime: FakeRuntime) -> None:
    with pytest.raises(InvalidParameter, match='^target stage "nope" could not be found$'):
        await run_build(runtime, "FROM busybox\n", target="nope")


async def test_meta_args_in_from(runtime: FakeRuntime) -> None:
    runtime.add_image("other:2", {"Env": ["X=other"]})
    image_id, out = await run_build(runtime, "ARG IMG=busybox\nARG TAG=latest\nFROM ${IMG}:${TAG}\nLABEL l=1\n",
                                    build_args={"IMG": "other", "TAG": "2"})
    assert out.text.startswith("Step 1/4 : ARG IMG=busybox\nStep 2/4 : ARG TAG=latest\nStep 3/4 : FROM ${IMG}:${TAG}\n")
    assert "X=other" in runtime.images[image_id].config["Env"]


async def test_arg_scoping(runtime: FakeRuntime) -> None:
    seen: list[list[str]] = []
    runtime.script = lambda config: (seen.append(list(config["Env"])), (0, [], {}))[1]  # type: ignore[func-returns-value]
    await run_build(runtime, "ARG G=global\nFROM busybox\nRUN a\nARG G\nRUN b\nFROM busybox\nRUN c\n")
    assert not any(e.startswith("G=") for e in seen[0])  # meta ARG is not in scope until redeclared
    assert "G=global" in seen[1]
    assert not any(e.startswith("G=") for e in seen[2])  # scoped to its stage


async def test_env_overrides_arg_in_expansion(runtime: FakeRuntime) -> None:
    image_id, _ = await run_build(runtime, "FROM busybox\nARG X=fromarg\nENV X=fromenv\nLABEL v=$X\n",
                                  build_args={"X": "cli"})
    assert runtime.images[image_id].config["Labels"] == {"v": "fromenv"}


async def test_onbuild_triggers(runtime: FakeRuntime) -> None:
    base, _ = await run_build(runtime, "FROM busybox\nONBUILD LABEL from=trigger\nONBUILD ENV T=1\n", tags=("base",))
    assert runtime.images[base].config["OnBuild"] == ["LABEL from=trigger", "ENV T=1"]
    child, out = await run_build(runtime, "FROM base\nCMD x\n")
    assert "Step 1/2 : FROM base\n# Executing 2 build triggers\n" in out.text
    config = runtime.images[child].config
    assert config["Labels"] == {"from": "trigger"} and "T=1" in config["Env"] and config["OnBuild"] is None


async def test_from_scratch(runtime: FakeRuntime) -> None:
    image_id, out = await run_build(runtime, "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", {"f": "x"})
    assert "Step 1/3 : FROM scratch\n ---> \n" in out.text
    image = runtime.images[image_id]
    assert image.files["f"] == b"x" and image.config["Env"][0].startswith("PATH=")


async def test_workdir_relative_and_created(runtime: FakeRuntime) -> None:
    image_id, _ = await run_build(runtime, "FROM busybox\nWORKDIR a\nWORKDIR b/../c\nWORKDIR /abs/\n")
    assert runtime.images[image_id].config["WorkingDir"] == "/abs/"
    assert runtime.history(image_id)[1] == "/bin/sh -c #(nop) WORKDIR /a/c"
    assert "a/c/" in runtime.images[image_id].files


async def test_copy_semantics(runtime: FakeRuntime) -> None:
    files = {"dir/": b"", "dir/a.txt": "A", "dir/sub/": b"", "dir/sub/b.txt": "B", "x.txt": "X", "y.txt": "Y"}
    image_id, _ = await run_build(runtime, "FROM busybox\nWORKDIR /w\nCOPY dir /copied\nCOPY dir/ rel/\n"
                                           "COPY *.txt /wild/\nCOPY x.txt /renamed\nCOPY x.txt /intodir/\n", files)
    f = runtime.images[image_id].files
    assert f["copied/a.txt"] == b"A" and f["copied/sub/b.txt"] == b"B"  # a directory's contents, not itself
    assert f["w/rel/a.txt"] == b"A"
    assert f["wild/x.txt"] == b"X" and f["wild/y.txt"] == b"Y"
    assert f["renamed"] == b"X" and f["intodir/x.txt"] == b"X"
    history = runtime.history(image_id)
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY multi:[0-9a-f]{64} in /wild/ ", history[2])
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY dir:[0-9a-f]{64} in /copied ", history[4])
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /renamed ", history[1])


@pytest.mark.parametrize(("instruction", "message"), [
    ("COPY nothere /x", "COPY failed: file not found in build context or excluded by .dockerignore: stat nothere: "
                        "file does not exist"),
    ("COPY ../f /x", "COPY failed: forbidden path outside the build context: ../f ()"),
    ("COPY f f /x", "When using COPY with more than one source file, the destination must be a directory and end "
                    "with a /"),
    ("COPY nomatch* /x/", "COPY failed: no source files were specified"),
    ("COPY http://example.com/x /x", "COPY failed: source can't be a URL for COPY"),
    ("ADD http://127.0.0.1/x /x", "ADD failed: cannot download http://127.0.0.1/x: this daemon has no network access "
                                  "(remote ADD sources are not supported)"),
    ("COPY --chmod=600 f /x", "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to "
                              "learn how to build images with BuildKit enabled"),
    ("COPY --from=1 f /x", "invalid from flag value 1: index out of bounds"),
    ("COPY --chown=ghost f /x", "unable to convert uid/gid chown string to host mapping: can't find uid for user "
                                "ghost: no such user: ghost"),
    ("RUN --mount=type=cache,target=/x true", "the --mount option requires BuildKit. Refer to "
                                              "https://docs.docker.com/go/buildkit/ to learn how to build images with "
                                              "BuildKit enabled"),
])
async def test_step_errors(runtime: FakeRuntime, instruction: str, message: str) -> None:
    with pytest.raises(BuildStepError) as info:
        await run_build(runtime, f"FROM busybox\n{instruction}\n", {"f": "x"})
    assert str(info.value) == message


@pytest.mark.parametrize(("instruction", "message"), [
    ("EXPOSE 80/xyz", "Invalid proto: xyz"),
    ("EXPOSE 9-8", "Invalid containerPort: 9-8"),
])
async def test_expose_is_checked_by_the_runtime_port_parser(runtime: FakeRuntime, instruction: str,
                                                           message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        await run_build(runtime, f"FROM busybox\n{instruction}\n")
    assert str(info.value) == message


async def test_stopsignal_is_checked_by_the_runtime_parser(runtime: FakeRuntime) -> None:
    # moby's dispatchStopSignal: errdefs.InvalidParameter(signal.ParseSignal(...))
    with pytest.raises(InvalidParameter, match="^Invalid signal: NOPE$"):
        await run_build(runtime, "FROM busybox\nSTOPSIGNAL NOPE\n")
    image_id, _ = await run_build(runtime, "FROM busybox\nSTOPSIGNAL 99\n")
    assert runtime.images[image_id].config["StopSignal"] == "99"


async def test_missing_base_images_are_pulled(runtime: FakeRuntime) -> None:
    runtime.registry["alpine:3"] = {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}
    image_id, out = await run_build(runtime, "FROM alpine:3\nCOPY --from=alpine:3 / /copy/\n")
    assert runtime.pulls == ["alpine:3"]  # once: the second use finds it locally
    progress = [v for k, v in out.events if k == "progress"]
    assert progress[0].status == "Pulling from library/alpine" and progress[1].current == 5
    assert runtime.images[image_id].parent == runtime.tags["alpine:3"]


async def test_pull_flag_pulls_present_images_and_failures_are_reported(runtime: FakeRuntime) -> None:
    runtime.registry["busybox:latest"] = BASE_CONFIG
    await run_build(runtime, "FROM scratch\nFROM busybox\n", pull=True)
    assert runtime.pulls == ["busybox:latest"]  # never for scratch
    from runtime.errors import NotFound
    with pytest.raises(NotFound, match="^pull access denied for nothere, repository does not exist$"):
        await run_build(runtime, "FROM nothere\n")
    with pytest.raises(BuildStepError, match="^invalid from flag value nothere: pull access denied"):
        await run_build(runtime, "FROM busybox\nCOPY --from=nothere /a /b\n")


async def test_context_and_dockerfile_errors(runtime: FakeRuntime) -> None:
    with pytest.raises(SystemError_, match="^Cannot locate specified Dockerfile: Other$"):
        await prepare(runtime, BuildRequest(dockerfile="Other"), io.BytesIO(context_tar({"Dockerfile": "FROM x"})))
    with pytest.raises(InvalidParameter, match=r"^the Dockerfile \(Dockerfile\) cannot be empty$"):
        await prepare(runtime, BuildRequest(), io.BytesIO(context_tar({"Dockerfile": ""})))
    with pytest.raises(DockerfileParseError, match="^failed to parse Dockerfile: file with no instructions$"):
        await prepare(runtime, BuildRequest(), io.BytesIO(context_tar({"Dockerfile": "# nothing"})))
    context, parsed = await prepare(runtime, BuildRequest(), io.BytesIO(context_tar({"dockerfile": "FROM busybox"})))
    context.close()
    assert parsed.nodes[0].value == "from"  # "Dockerfile" falls back to "dockerfile"


async def test_parse_errors_come_from_build(runtime: FakeRuntime) -> None:
    with pytest.raises(DockerfileParseError, match="^dockerfile parse error line 2: unknown instruction: FOO$"):
        await run_build(runtime, "FROM busybox\nFOO bar\n")


async def test_empty_build_and_bad_tags(runtime: FakeRuntime) -> None:
    with pytest.raises(BuildStepError, match="^No image was generated. Is your Dockerfile empty\\?$"):
        await run_build(runtime, "ARG X=1\n")
    with pytest.raises(InvalidParameter):
        await run_build(runtime, "FROM busybox\n", tags=("UPPER/case",))
    with pytest.raises(InvalidParameter, match="build tag cannot contain a digest"):
        await run_build(runtime, "FROM busybox\n", tags=("a@sha256:" + "0" * 64,))


async def test_healthcheck_options_are_inherited_like_dockerd(runtime: FakeRuntime) -> None:
    image_id, out = await run_build(runtime, "FROM busybox\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"
                                             "HEALTHCHECK CMD false\nHEALTHCHECK NONE\n")
    assert "Note: overriding previous HEALTHCHECK: [CMD-SHELL true]\n" in out.text
    assert runtime.images[image_id].config["Healthcheck"] == {
        "Test": ["NONE"], "Interval": 5_000_000_000, "Retries": 2}
    # the history records the options as written, before dockerd's merge
    assert runtime.history(image_id)[1] == ('/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "false"] "0s" "0s" "0s" '
                                            "'\\x00'}")


async def test_parse_warnings_are_one_stderr_write(runtime: FakeRuntime) -> None:
    _, out = await run_build(runtime, "FROM busybox\nLABEL a=1 \\\n\n  b=2\n")
    warnings = [v for k, v in out.events if k == "stderr"]
    assert warnings == ["[WARNING]: Empty continuation line found in:\n    LABEL a=1   b=2\n"
                        "[WARNING]: Empty continuation lines will become errors in a future release.\n"]
