from __future__ import annotations

import pytest

from runtime.errors import InvalidParameter
from runtime.images.changes import apply_changes
from runtime.images.config import normalize_runtime_config


def test_changes_match_dockerd_output() -> None:
    # expected value captured from dockerd 20.10 `docker import -c ...` for the same changes
    cfg = apply_changes({}, [
        'ENV A=1 B="x y"', "ENV C $A-z", "EXPOSE 80 90-91/udp", "WORKDIR app", "WORKDIR sub",
        "CMD echo hi", 'ENTRYPOINT ["e"]', 'LABEL a=b "c d"="e f"', "VOLUME /v", "USER nobody", "ONBUILD run echo",
    ])
    assert normalize_runtime_config(cfg) == {
        "Hostname": "", "Domainname": "", "User": "nobody", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "ExposedPorts": {"80/tcp": {}, "90/udp": {}, "91/udp": {}}, "Tty": False,
        "OpenStdin": False, "StdinOnce": False, "Env": ["A=1", "B=x y", "C=1-z"],
        "Cmd": ["/bin/sh", "-c", "echo hi"], "Image": "", "Volumes": {"/v": {}}, "WorkingDir": "/app/sub",
        "Entrypoint": ["e"], "OnBuild": ["RUN echo"], "Labels": {"a": "b", "c d": "e f"},
    }


def test_entrypoint_resets_cmd_unless_cmd_was_given() -> None:
    assert apply_changes({"Cmd": ["old"]}, ['ENTRYPOINT ["e"]'])["Cmd"] is None
    assert apply_changes({"Cmd": ["old"]}, ['CMD ["new"]', 'ENTRYPOINT ["e"]'])["Cmd"] == ["new"]


def test_env_override_legacy_form_and_stopsignal_healthcheck() -> None:
    cfg = apply_changes({"Env": ["PATH=/bin", "A=0"]}, ["ENV A 1 2", "STOPSIGNAL SIGINT",
                                                      "HEALTHCHECK --interval=5s --retries=2 CMD true"])
    assert cfg["Env"] == ["PATH=/bin", "A=1 2"]
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}


@pytest.mark.parametrize("change,message", [
    ("RUN echo", "run is not a valid change command"),
    ("FROM x", "from is not a valid change command"),
    ("STOPSIGNAL NOPE", "Invalid signal: NOPE"),
    ("EXPOSE abc", "Invalid containerPort: abc"),
    ("ENV novalue", "ENV must have two arguments"),
])
def test_invalid_changes(change: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        apply_changes({}, [change])
