"""``docker run`` through the stock CLI: output, exit codes, start errors and the run flags."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conformance.cli import CliDialect, DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def test_run_rm_echo_hello(box: Box) -> None:
    name = box.name()
    proc = box.run("--rm", "--name", name, box.image, "echo", "hello")
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr
    assert proc.stderr == ""
    # --rm: the container is gone once the CLI returns.
    gone = box.cli("container", "inspect", name)
    assert gone.returncode == 1
    assert f"No such container: {name}" in str(gone.stderr)


def test_exit_code_is_propagated(box: Box) -> None:
    proc = box.run("--rm", box.image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"


def _start_error(proc_stderr: str, cli_dialect: CliDialect) -> None:
    if cli_dialect.legacy:
        # 20.10 may log "error waiting for container: context canceled" first, and adds no hint
        assert "docker: Error response from daemon: " in proc_stderr, proc_stderr
        return
    assert proc_stderr.startswith("docker: Error response from daemon: "), proc_stderr
    assert "Run 'docker run --help' for more information" in proc_stderr


def test_missing_executable_exits_127(box: Box, cli_dialect: CliDialect) -> None:
    proc = box.run("--rm", box.image, "/no/such")
    assert proc.returncode == 127, proc.stderr
    assert proc.stdout == ""
    _start_error(proc.stderr, cli_dialect)
    # The stable part of runc's text (the prefix differs between dockerd releases).
    assert 'exec: "/no/such": stat /no/such: no such file or directory' in proc.stderr


def test_command_not_in_path_exits_127(box: Box, cli_dialect: CliDialect) -> None:
    proc = box.run("--rm", box.image, "nosuchcmd")
    assert proc.returncode == 127, proc.stderr
    _start_error(proc.stderr, cli_dialect)
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in proc.stderr


@pytest.mark.parametrize("path", ["/etc/passwd", "/tmp"])
def test_non_executable_exits_126(box: Box, path: str, cli_dialect: CliDialect) -> None:
    proc = box.run("--rm", box.image, path)
    assert proc.returncode == 126, proc.stderr
    _start_error(proc.stderr, cli_dialect)
    # A directory: runc built with Go < 1.22 says "permission denied" (dockerd 20.10); newer Go's
    # exec.LookPath says "is a directory" (EISDIR).
    assert re.search(
        rf'exec: "{path}": (is a directory: )?permission denied|exec: "{path}": is a directory',
        proc.stderr,
    ), proc.stderr


def test_failed_start_leaves_created_container(box: Box) -> None:
    name = box.name()
    proc = box.run("--name", name, box.image, "/no/such")
    assert proc.returncode == 127
    state = box.state(name)
    assert state["Running"] is False
    assert state["ExitCode"] == 127
    assert "no such file or directory" in state["Error"]


def test_stdin_piped_with_i(box: Box) -> None:
    proc = box.run("--rm", "-i", box.image, "tr", "a-z", "A-Z", input="abc\nxyz\n")
    assert (proc.returncode, proc.stdout) == (0, "ABC\nXYZ\n"), proc.stderr


def test_stdin_not_attached_without_i(box: Box) -> None:
    proc = box.run("--rm", box.image, "sh", "-c", "cat; echo done", input="ignored\n")
    assert (proc.returncode, proc.stdout) == (0, "done\n"), proc.stderr


def test_env_and_env_file(box: Box, tmp_path: Path) -> None:
    env_file = tmp_path / "env.list"
    env_file.write_text("FROM_FILE=1\n# a comment\nSPACED=two words\nOVERRIDDEN=file\n")
    proc = box.cli(
        "run", "--rm", "--network", "none",
        "--env-file", str(env_file),
        "-e", "FROM_FLAG=x=y",
        "-e", "OVERRIDDEN=flag",
        "-e", "PASSED_THROUGH",
        box.image, "env",
        env={"PASSED_THROUGH": "from-cli-env"},
        timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    env = dict(line.split("=", 1) for line in str(proc.stdout).splitlines())
    assert env["FROM_FILE"] == "1"
    assert env["SPACED"] == "two words"
    assert env["FROM_FLAG"] == "x=y"
    assert env["OVERRIDDEN"] == "flag"
    assert env["PASSED_THROUGH"] == "from-cli-env"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"
    assert re.fullmatch(r"[0-9a-f]{12}", env["HOSTNAME"]), env


def test_workdir_is_created(box: Box) -> None:
    proc = box.run(
        "--rm",
        "-w",
        "/some/new/dir",
        box.image,
        "sh",
        "-c",
        "pwd; ls -ld . | cut -c1-10",
    )
    assert (proc.returncode, proc.stdout) == (0, "/some/new/dir\ndrwxr-xr-x\n"), (
        proc.stderr
    )


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("65534:65534", "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"),
        ("nobody", "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"),
        ("1234", "uid=1234 gid=0(root) groups=0(root)"),
        ("0", "uid=0(root) gid=0(root) groups=0(root)"),
    ],
)
def test_user(box: Box, user: str, expected: str) -> None:
    proc = box.run("--rm", "-u", user, box.image, "id")
    assert (proc.returncode, proc.stdout.strip()) == (0, expected), proc.stderr


def test_home_of_user(box: Box) -> None:
    proc = box.run("--rm", "-u", "nobody", box.image, "sh", "-c", 'echo "$HOME"')
    assert (proc.returncode, proc.stdout) == (0, "/nonexistent\n"), proc.stderr


def test_unknown_user_fails(box: Box) -> None:
    proc = box.run("--rm", "-u", "nosuchuser", box.image, "id")
    assert proc.returncode != 0
    assert "no matching entries in passwd file" in proc.stderr


def test_hostname_flag(box: Box) -> None:
    proc = box.run(
        "--rm",
        "--hostname",
        "myhost",
        box.image,
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    )
    assert (proc.returncode, proc.stdout) == (0, "myhost\nmyhost\n"), proc.stderr


def test_default_hostname_is_short_id(box: Box) -> None:
    name = box.name()
    proc = box.run("--name", name, box.image, "hostname")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == box.inspect(name)["Id"][:12]


def test_etc_files_present(box: Box) -> None:
    proc = box.run("--rm", box.image, "cat", "/etc/hosts")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^127\.0\.0\.1\s+localhost$", proc.stdout, re.MULTILINE), (
        proc.stdout
    )
    proc = box.run("--rm", box.image, "test", "-f", "/etc/resolv.conf")
    assert proc.returncode == 0


def test_entrypoint_flag(box: Box) -> None:
    proc = box.run("--rm", "--entrypoint", "echo", box.image, "hi", "there")
    assert (proc.returncode, proc.stdout) == (0, "hi there\n"), proc.stderr
    proc = box.run("--rm", "--entrypoint", "/bin/sh", box.image, "-c", "echo via-sh")
    assert (proc.returncode, proc.stdout) == (0, "via-sh\n"), proc.stderr


def test_name_and_labels(box: Box) -> None:
    name = box.name()
    proc = box.run(
        "--name",
        name,
        "--label",
        "com.example.a=b",
        "--label",
        "flag",
        box.image,
        "true",
    )
    assert proc.returncode == 0, proc.stderr
    info = box.inspect(name)
    assert info["Name"] == f"/{name}"
    assert info["Config"]["Labels"] == {"com.example.a": "b", "flag": ""}
    assert info["State"]["ExitCode"] == 0


def test_invalid_name_rejected(box: Box) -> None:
    proc = box.run("--rm", "--name", "bad name!", box.image, "true")
    assert proc.returncode == 125
    assert (
        "Invalid container name (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        in proc.stderr
    )


def test_pid_one_and_only_own_processes(box: Box) -> None:
    # `; true` keeps sh from exec'ing ps, so sh stays PID 1 and ps is its child.
    proc = box.run("--rm", box.image, "sh", "-c", "echo $$; ps -o pid,comm; true")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "1"
    procs = [line.split() for line in lines[2:]]
    assert [comm for _, comm in procs] == ["sh", "ps"], proc.stdout
    assert procs[0][0] == "1"


def test_files_not_shared_between_containers_or_host(box: Box) -> None:
    marker = unique("isolation")
    first = box.name()
    proc = box.run(
        "--name",
        first,
        box.image,
        "sh",
        "-c",
        f"echo secret > /tmp/{marker} && cat /tmp/{marker}",
    )
    assert (proc.returncode, proc.stdout) == (0, "secret\n"), proc.stderr
    proc = box.run("--rm", box.image, "sh", "-c", f"test -e /tmp/{marker}")
    assert proc.returncode == 1, "a second container sees the first one's file"
    assert not Path(f"/tmp/{marker}").exists(), (
        "a container's file appeared on the host"
    )
    # ... but the file stays in the first container's own filesystem.
    again = box.cli("start", "-a", first, timeout=30)
    assert (again.returncode, again.stdout) == (0, "secret\n"), again.stderr


def test_run_rm_with_nonzero_exit_still_removes(box: Box) -> None:
    name = box.name()
    proc = box.run("--rm", "--name", name, box.image, "false")
    assert proc.returncode == 1
    assert box.cli("container", "inspect", name).returncode == 1


def test_missing_image_without_pull(box: Box) -> None:
    image = f"{unique('nosuchimage')}:latest"
    proc = box.run("--rm", "--pull", "never", image, "true")
    assert proc.returncode == 125
    assert f"No such image: {image}" in proc.stderr


def test_host_root_untouched_by_cwd(box: Box) -> None:
    # The CLI's cwd has no bearing on the container's working directory.
    proc = box.cli(
        "run",
        "--rm",
        "--network",
        "none",
        box.image,
        "pwd",
        cwd=os.path.dirname(__file__),
        timeout=30,
    )
    assert (proc.returncode, proc.stdout) == (0, "/\n"), proc.stderr
