"""Docker's default seccomp profile, observed from inside containers: on by default (and for
execs), ``--security-opt seccomp=unconfined``, a custom profile file, capabilities that re-allow
syscalls, ``--privileged``; ``docker info`` SecurityOptions and the start error of a profile the
engine cannot decode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.apiversion import APIVersion
from conformance.cli import DockerCLI
from conformance.conftest import Advertised, Engine
from conformance.containerkit import Box
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

STATUS = ("grep", "^Seccomp", "/proc/self/status")
NO_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
}


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _status(box: Box, *flags: str) -> dict[str, str]:
    proc = box.run("--rm", *flags, box.image, *STATUS)
    assert proc.returncode == 0, proc.stderr
    return {k: v.strip() for k, v in (line.split(":", 1) for line in proc.stdout.splitlines())}


def test_info_lists_the_builtin_profile(docker_cli: DockerCLI, advertised: Advertised) -> None:
    options = json.loads(docker_cli.ok("info", "--format", "{{json .SecurityOptions}}"))
    # Engines before 23.0 (API 1.42) named the built-in profile "default".
    name = "builtin" if advertised.max >= APIVersion(1, 42) else "default"
    assert f"name=seccomp,profile={name}" in options, options


def test_default_profile_is_on(box: Box) -> None:
    assert _status(box) == {"Seccomp": "2", "Seccomp_filters": "1"}


def test_unconfined_has_no_filter(box: Box) -> None:
    assert _status(box, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"


def test_privileged_runs_unconfined(box: Box, engine: Engine) -> None:
    proc = box.run("--rm", "--privileged", box.image, *STATUS)
    if not engine.is_pydockerd and "unable to apply caps" in proc.stderr:
        pytest.skip("the reference engine's runc cannot start privileged containers on this host")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["Seccomp:", "0"], proc.stdout


def test_default_profile_refuses_unshare(box: Box) -> None:
    # A user namespace needs no capability: the profile alone refuses it...
    proc = box.run("--rm", box.image, "unshare", "-U", "true")
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stderr, proc.stderr
    # ... and unconfined allows it.
    proc = box.run("--rm", "--security-opt", "seccomp=unconfined", box.image, "unshare", "-U", "true")
    assert proc.returncode == 0, proc.stderr


def test_sys_admin_reallows_unshare_and_mount(box: Box) -> None:
    proc = box.run("--rm", "--cap-add", "SYS_ADMIN", box.image, "sh", "-c",
                   "unshare -m true && mount -t tmpfs none /tmp && echo ok")
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


def test_allowed_personality_and_ordinary_work(box: Box) -> None:
    script = ("ls / >/dev/null && cat /etc/passwd >/dev/null && sleep 0.01 && echo x >/tmp/f && "
              "mkdir /tmp/d && ping -c 1 -W 2 127.0.0.1 >/dev/null && linux32 uname -m")
    proc = box.run("--rm", box.image, "sh", "-c", script)
    assert (proc.returncode, proc.stdout) == (0, "i686\n"), proc.stderr


def test_custom_profile_file(box: Box, tmp_path: Path) -> None:
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(NO_MKDIR, indent=2))
    name = box.name()
    proc = box.run("--name", name, "--security-opt", f"seccomp={path}", box.image, "mkdir", "/x")
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stderr, proc.stderr
    # The CLI sends the file's (compacted) content; inspect shows it as sent.
    opts = box.inspect(name)["HostConfig"]["SecurityOpt"]
    assert len(opts) == 1 and opts[0].startswith("seccomp={"), opts
    assert json.loads(opts[0].removeprefix("seccomp=")) == NO_MKDIR


def test_exec_gets_the_container_profile(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "60")
    for flags in ((), ("--privileged",)):
        proc = box.cli("exec", *flags, name, *STATUS)
        if flags and "unable to apply caps" in f"{proc.stdout!s}{proc.stderr!s}":
            continue  # the reference's runc cannot grant every capability on this host
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["Seccomp:", "2", "Seccomp_filters:", "1"], flags
    box.ok("rm", "-f", name)


def test_undecodable_profile_fails_the_start(raw: RawHTTP, tracker: ResourceTracker,
                                             busybox_image: str, advertised: Advertised) -> None:
    name = tracker.container("conf-seccomp-bad")
    body = {"Image": busybox_image, "Cmd": ["true"],
            "HostConfig": {"SecurityOpt": ["seccomp={bad"], "NetworkMode": "none"}}
    v = advertised.api_version
    created = raw.post(f"/v{v}/containers/create?name={name}", json_body=body)
    assert created.status == 201, created.describe()
    started = raw.post(f"/v{v}/containers/{name}/start")
    assert started.status == 500, started.describe()
    assert started.error_message() == ("Decoding seccomp profile failed: invalid character 'b' "
                                       "looking for beginning of object key string")
