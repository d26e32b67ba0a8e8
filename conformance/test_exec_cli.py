"""``docker exec`` through the stock CLI: stdio, exit codes, -i/-t/-u/-w/-e/-d and errors."""

from __future__ import annotations

import re
import time

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import QUICK, Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def sleeper(box: Box) -> str:
    """A running container to exec into."""
    return box.run_d(box.image, "sleep", "300")


def test_exec_output_and_exit_code(box: Box, sleeper: str) -> None:
    proc = box.cli(
        "exec", sleeper, "sh", "-c", "echo out; echo err >&2; exit 5", timeout=QUICK
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, "out\n", "err\n")
    proc = box.cli("exec", sleeper, "true", timeout=QUICK)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_exec_runs_in_the_container_namespaces(box: Box, sleeper: str) -> None:
    out = box.ok("exec", sleeper, "sh", "-c", "echo $$; ps -o pid,comm; hostname; true")
    lines = out.splitlines()
    assert int(lines[0]) > 1
    procs = {comm: int(pid) for pid, comm in (line.split() for line in lines[2:-1])}
    assert procs["sleep"] == 1, out
    assert set(procs) == {"sleep", "sh", "ps"}, out
    assert lines[-1] == box.inspect(sleeper)["Id"][:12]


def test_exec_stdin_piped_until_eof(box: Box, sleeper: str) -> None:
    proc = box.cli(
        "exec",
        "-i",
        sleeper,
        "sh",
        "-c",
        "cat; echo; echo end",
        input="abc\ndef",
        timeout=QUICK,
    )
    assert (proc.returncode, proc.stdout) == (0, "abc\ndef\nend\n"), proc.stderr
    proc = box.cli(
        "exec", "-i", sleeper, "tr", "a-z", "A-Z", input="hello\n", timeout=QUICK
    )
    assert (proc.returncode, proc.stdout) == (0, "HELLO\n"), proc.stderr


def test_exec_large_stdin_roundtrip(box: Box, sleeper: str) -> None:
    data = "".join(
        f"{i:08d}\n" for i in range(50000)
    )  # 450 kB, more than any pipe buffer
    proc = box.cli("exec", "-i", sleeper, "cat", input=data, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == data


def test_exec_without_i_gets_no_stdin(box: Box, sleeper: str) -> None:
    proc = box.cli(
        "exec", sleeper, "sh", "-c", "cat; echo done", input="ignored\n", timeout=QUICK
    )
    assert (proc.returncode, proc.stdout) == (0, "done\n"), proc.stderr


def test_exec_tty(box: Box, sleeper: str) -> None:
    proc = box.cli(
        "exec", "-t", sleeper, "sh", "-c", "tty; exit 3", input=b"", timeout=QUICK
    )
    assert proc.returncode == 3
    assert isinstance(proc.stdout, bytes)
    assert re.fullmatch(rb"/dev/pts/\d+\r\n", proc.stdout), proc.stdout


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("65534:65534", "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"),
        ("nobody", "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"),
        ("1234:65534", "uid=1234 gid=65534(nobody) groups=65534(nobody)"),
    ],
)
def test_exec_user(box: Box, sleeper: str, user: str, expected: str) -> None:
    proc = box.cli("exec", "-u", user, sleeper, "id", timeout=QUICK)
    assert (proc.returncode, str(proc.stdout).strip()) == (0, expected), proc.stderr


def test_exec_inherits_container_user(box: Box) -> None:
    name = box.run_d("-u", "nobody", box.image, "sleep", "300")
    assert box.ok("exec", name, "id", "-u") == "65534\n"
    assert box.ok("exec", "-u", "0", name, "id", "-u") == "0\n"


def test_exec_unknown_user(box: Box, sleeper: str) -> None:
    proc = box.cli("exec", "-u", "nosuchuser", sleeper, "id", timeout=QUICK)
    assert proc.returncode == 126
    assert "unable to find user nosuchuser: no matching entries in passwd file" in str(
        proc.stdout
    ) + str(proc.stderr)


def test_exec_workdir(box: Box, sleeper: str) -> None:
    assert box.ok("exec", "-w", "/tmp", sleeper, "pwd") == "/tmp\n"
    # The container's own working directory is the default.
    name = box.run_d("-w", "/etc", box.image, "sleep", "300")
    assert box.ok("exec", name, "pwd") == "/etc\n"


def test_exec_env(box: Box) -> None:
    name = box.run_d("-e", "FROM_RUN=r", "-e", "SHARED=run", box.image, "sleep", "300")
    out = box.ok("exec", "-e", "FROM_EXEC=e", "-e", "SHARED=exec", name, "env")
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["FROM_RUN"] == "r"
    assert env["FROM_EXEC"] == "e"
    assert env["SHARED"] == "exec"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"


def test_exec_detached(box: Box, sleeper: str) -> None:
    proc = box.cli(
        "exec",
        "-d",
        sleeper,
        "sh",
        "-c",
        "sleep 0.2; echo detached > /tmp/d",
        timeout=QUICK,
    )
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    deadline = time.monotonic() + 10
    while (
        box.cli("exec", sleeper, "test", "-s", "/tmp/d", timeout=QUICK).returncode != 0
    ):
        assert time.monotonic() < deadline, "detached exec never ran"
        time.sleep(0.1)
    assert box.ok("exec", sleeper, "cat", "/tmp/d") == "detached\n"


def test_exec_missing_executable(box: Box, sleeper: str) -> None:
    proc = box.cli("exec", sleeper, "/no/such", timeout=QUICK)
    # dockerd 20.10 reports 126 for every exec start failure; later releases keep the 127 that
    # translateContainerdStartErr sets for a missing executable.
    assert proc.returncode in (126, 127)
    out = str(proc.stdout) + str(proc.stderr)
    assert 'exec: "/no/such": stat /no/such: no such file or directory' in out, out


def test_exec_not_executable(box: Box, sleeper: str) -> None:
    proc = box.cli("exec", sleeper, "/etc/passwd", timeout=QUICK)
    assert proc.returncode == 126
    out = str(proc.stdout) + str(proc.stderr)
    assert 'exec: "/etc/passwd": permission denied' in out, out


def test_exec_in_stopped_container(box: Box) -> None:
    name = box.name()
    assert box.run("--name", name, box.image, "true").returncode == 0
    cid = box.inspect(name)["Id"]
    proc = box.cli("exec", name, "true", timeout=QUICK)
    assert proc.returncode == 1
    assert f"Container {cid} is not running" in str(proc.stderr), proc.stderr


def test_exec_in_missing_container(box: Box) -> None:
    missing = unique("missing")
    proc = box.cli("exec", missing, "true", timeout=QUICK)
    assert proc.returncode == 1
    # "Error response from daemon: " (CLI 23+) or "Error: " (20.10) before it
    assert f"No such container: {missing}" in str(proc.stderr)


def test_exec_ids_recorded_in_inspect(box: Box, sleeper: str) -> None:
    assert box.inspect(sleeper)["ExecIDs"] is None
    proc = box.cli("exec", "-d", sleeper, "sleep", "5", timeout=QUICK)
    assert proc.returncode == 0, proc.stderr
    ids = box.inspect(sleeper)["ExecIDs"]
    assert (
        isinstance(ids, list)
        and len(ids) == 1
        and re.fullmatch(r"[0-9a-f]{64}", ids[0])
    ), ids
