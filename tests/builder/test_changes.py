"""``commit``/``import --change``: moby's BuildFromConfig on the builder's own dispatcher.
The rows of the two former runtime copies (runtime/images/changes.py for import,
runtime/containers/changes.py for commit) are here, with what dockerd answers where they
disagreed (EXPOSE ranges, relative WORKDIR, STOPSIGNAL, ``$VAR`` expansion)."""

from __future__ import annotations

from typing import Any

import pytest

from builder.changes import VALID_CHANGES, build_from_config
from runtime.errors import InvalidParameter
from runtime.images.config import normalize_runtime_config


def applied(changes: list[str], config: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_from_config(config or {}, changes)


def test_changes_match_dockerd_output() -> None:
    # expected value captured from dockerd 20.10 `docker import -c ...` for the same changes
    # (the ONBUILD trigger is kept as written: `docker import -c 'ONBUILD run echo'` gives "run echo")
    cfg = applied([
        'ENV A=1 B="x y"', "ENV C $A-z", "EXPOSE 80 90-91/udp", "WORKDIR app", "WORKDIR sub",
        "CMD echo hi", 'ENTRYPOINT ["e"]', 'LABEL a=b "c d"="e f"', "VOLUME /v", "USER nobody", "ONBUILD run echo",
    ])
    assert normalize_runtime_config(cfg) == {
        "Hostname": "", "Domainname": "", "User": "nobody", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "ExposedPorts": {"80/tcp": {}, "90/udp": {}, "91/udp": {}}, "Tty": False,
        "OpenStdin": False, "StdinOnce": False, "Env": ["A=1", "B=x y", "C=1-z"],
        "Cmd": ["/bin/sh", "-c", "echo hi"], "Image": "", "Volumes": {"/v": {}}, "WorkingDir": "/app/sub",
        "Entrypoint": ["e"], "OnBuild": ["run echo"], "Labels": {"a": "b", "c d": "e f"},
    }


BASE = {"WorkingDir": "/base", "Env": ["A=1"], "Cmd": ["x"], "StopSignal": "SIGUSR1"}


@pytest.mark.parametrize(("change", "key", "value"), [
    # each checked against dockerd 20.10 (docker commit / docker import --change)
    ("EXPOSE 8000-8001", "ExposedPorts", {"8000/tcp": {}, "8001/tcp": {}}),
    ("EXPOSE 53/UDP", "ExposedPorts", {"53/udp": {}}),
    ("WORKDIR rel", "WorkingDir", "/base/rel"),
    ("WORKDIR ../a/./b", "WorkingDir", "/a/b"),
    ("WORKDIR /abs/./x", "WorkingDir", "/abs/./x"),  # an absolute one is kept as written
    ("ENV B=$A", "Env", ["A=1", "B=1"]),
    ("ENV A=2", "Env", ["A=2"]),
    ("ENV X y z", "Env", ["A=1", "X=y z"]),
    ("USER $A", "User", "1"),
    ("USER $HOME", "User", ""),
    ("LABEL k=$A", "Labels", {"k": "1"}),
    ("STOPSIGNAL 99", "StopSignal", "99"),
    ("STOPSIGNAL sigkill", "StopSignal", "sigkill"),
    ("CMD echo hi", "Cmd", ["/bin/sh", "-c", "echo hi"]),
    ('CMD ["a"]', "Cmd", ["a"]),
    ("ENTRYPOINT e", "Cmd", None),  # ENTRYPOINT resets CMD unless CMD was given before
    ('VOLUME ["/a", "/b"]', "Volumes", {"/a": {}, "/b": {}}),
    ("ONBUILD RUN x", "OnBuild", ["RUN x"]),
    ("HEALTHCHECK --interval=1h30m CMD true", "Healthcheck",
     {"Test": ["CMD-SHELL", "true"], "Interval": 5_400_000_000_000}),
    ("HEALTHCHECK --interval=200ms --retries=2 CMD true", "Healthcheck",
     {"Test": ["CMD-SHELL", "true"], "Interval": 200_000_000, "Retries": 2}),
    ("HEALTHCHECK --start-interval=2s CMD true", "Healthcheck",
     {"Test": ["CMD-SHELL", "true"], "StartInterval": 2_000_000_000}),
    ('HEALTHCHECK CMD ["/bin/check", "-q"]', "Healthcheck", {"Test": ["CMD", "/bin/check", "-q"]}),
    ("HEALTHCHECK NONE", "Healthcheck", {"Test": ["NONE"]}),
])
def test_one_change(change: str, key: str, value: Any) -> None:
    assert applied([change], dict(BASE))[key] == value


def test_changes_apply_in_order_and_leave_the_input_alone() -> None:
    base = dict(BASE)
    cfg = applied(['CMD ["new"]', 'ENTRYPOINT ["e"]', "ENV P=$A", "WORKDIR sub", "WORKDIR ..", "EXPOSE 80",
                   "EXPOSE 80/tcp 81"], base)
    assert cfg["Cmd"] == ["new"] and cfg["Entrypoint"] == ["e"] and cfg["Env"] == ["A=1", "P=1"]
    assert cfg["WorkingDir"] == "/base" and sorted(cfg["ExposedPorts"]) == ["80/tcp", "81/tcp"]
    assert base == BASE


def test_a_change_may_span_values_and_lines() -> None:
    # the values are joined with newlines and read as one Dockerfile
    assert applied(["ENV A=1 \\", "B=2"])["Env"] == ["A=1", "B=2"]
    assert applied(["LABEL a=1\nLABEL b=2"])["Labels"] == {"a": "1", "b": "2"}
    assert applied([]) == {}


@pytest.mark.parametrize(("change", "message"), [
    ("RUN echo", "run is not a valid change command"),
    ("FROM x", "from is not a valid change command"),
    ("COPY a b", "copy is not a valid change command"),
    ("ARG x", "arg is not a valid change command"),
    ("SHELL [\"sh\"]", "shell is not a valid change command"),
    ("MAINTAINER me", "maintainer is not a valid change command"),
    ("STOPSIGNAL NOPE", "Invalid signal: NOPE"),
    ("STOPSIGNAL BOGUS", "Invalid signal: BOGUS"),
    ("STOPSIGNAL 0", "Invalid signal: 0"),
    ("EXPOSE abc", "Invalid containerPort: abc"),
    ("EXPOSE 70000", "Invalid containerPort: 70000"),
    ("EXPOSE 80/bogus", "Invalid proto: bogus"),
    ("EXPOSE 9-8", "Invalid containerPort: 9-8"),
    ("ENV novalue", "ENV must have two arguments"),
    ("LABEL", "LABEL requires at least one argument"),
    ("HEALTHCHECK --interval=bogus CMD true", 'time: invalid duration "bogus"'),
    ("HEALTHCHECK --colour=red CMD true", "Unknown flag: colour"),
    ("HEALTHCHECK --interval=1us CMD true", 'Interval "interval" cannot be less than 1ms'),
    ("USER ${A:?unset}", "unset"),
])
def test_invalid_changes(change: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        applied([change])
    assert message in str(caught.value)


def test_the_allowed_instructions_are_mobys() -> None:
    assert VALID_CHANGES == {"cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild",
                             "stopsignal", "user", "volume", "workdir"}
