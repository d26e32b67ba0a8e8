"""Build state (builder.state): run config documents, the cache comparison, ARG rules."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from builder.state import BuildArgs, RunConfig, StageResults, same_config
from runtime.containers.model import ContainerConfig

DOC = {
    "Hostname": "", "Domainname": "", "User": "u", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "ExposedPorts": {"80/tcp": {}}, "Tty": False, "OpenStdin": False, "StdinOnce": False,
    "Env": ["A=1"], "Cmd": ["sh"], "Healthcheck": {"Test": ["NONE"]}, "Image": "sha256:x",
    "Volumes": {"/v": {}}, "WorkingDir": "/w", "Entrypoint": None, "OnBuild": None, "Labels": {"l": "1"},
    "StopSignal": "SIGTERM", "Shell": ["/bin/bash", "-c"],
}


def test_doc_round_trip_in_field_order() -> None:
    config = RunConfig.from_doc(DOC)
    assert config.to_doc() == DOC and list(config.to_doc()) == list(DOC)
    assert RunConfig().to_doc()["Env"] is None and "ExposedPorts" not in RunConfig().to_doc()


def test_fields_stay_in_step_with_the_runtime_container_config() -> None:
    ours = [(f.name, f.default) for f in fields(RunConfig)]
    theirs = [(f.name, f.default) for f in fields(ContainerConfig)]
    assert ours == theirs
    assert RunConfig.__annotations__ == {**ContainerConfig.__annotations__,
                                         "healthcheck": "Mapping[str, Any] | None"}


def test_same_config_ignores_container_specific_fields() -> None:
    a = RunConfig.from_doc(DOC)
    assert same_config(a, replace(a, hostname="abc", image="other", domainname="d", mac_address="m"))
    assert same_config(a, replace(a, exposed_ports=("80/tcp",)))
    for change in ({"cmd": ("x",)}, {"env": ("A=2",)}, {"user": ""}, {"labels": {"l": "2"}},
                   {"healthcheck": None}, {"volumes": ("/o",)}, {"shell": None}, {"args_escaped": True}):
        assert not same_config(a, replace(a, **change)), change  # type: ignore[arg-type]


def test_build_args_defaults_options_and_meta() -> None:
    args = BuildArgs({"FROM_CLI": "cli", "DECLARED_NO_VALUE": None, "HTTP_PROXY": "proxy"})
    args.add_meta_arg("META", "m")
    args.add_arg("META", None)  # redeclared in the stage: takes the meta value
    args.add_arg("FROM_CLI", "default")
    args.add_arg("PLAIN", "p")
    args.add_arg("UNSET", None)
    assert args.all_allowed() == {"META": "m", "FROM_CLI": "cli", "PLAIN": "p", "HTTP_PROXY": "proxy"}
    assert sorted(args.filter_allowed(["PLAIN=env"])) == ["FROM_CLI=cli", "HTTP_PROXY=proxy", "META=m"]
    assert args.unused() == ["DECLARED_NO_VALUE"]
    assert not args.is_referenced_or_not_builtin("HTTP_PROXY") and args.is_referenced_or_not_builtin("X")


def test_stage_scoping_clones_and_resets() -> None:
    base = BuildArgs({})
    base.add_meta_arg("G", "g")
    stage = base.clone()
    stage.reset_allowed()
    assert stage.all_allowed() == {} and stage.all_meta() == {"G": "g"}


def test_stage_results() -> None:
    results = StageResults()
    results.commit("Build", RunConfig(image="sha256:a"))
    results.commit("", RunConfig(image="sha256:b"))
    assert results.get("build") == RunConfig(image="sha256:a") and results.get("1") == RunConfig(image="sha256:b")
    assert results.get("alpine") is None
    with pytest.raises(ValueError, match="refers to current build stage"):
        results.get("2")
    with pytest.raises(ValueError, match="index out of bounds"):
        results.get("3")
    with pytest.raises(ValueError, match="^BUILD stage name already used$"):
        results.commit("BUILD", RunConfig())
