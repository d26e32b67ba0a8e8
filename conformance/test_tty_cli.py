"""TTY containers through the stock CLI under a real pseudo-terminal: ``-t``, ``-it``, resize,
the ctrl-p ctrl-q detach sequence and ``exec -it``."""

from __future__ import annotations

import re

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, PtyCLI
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

PROMPT = rb"# "


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def test_run_t_prints_a_pts(box: Box) -> None:
    with PtyCLI(
        box.cli, "run", "--rm", "--network", "none", "-t", box.image, "tty"
    ) as term:
        # -t without -i leaves the local terminal cooked, so its ONLCR adds a CR to the pty's CRLF.
        term.expect(rb"^/dev/pts/\d+\r+\n")
        assert term.wait() == 0


def test_run_t_without_a_terminal(box: Box) -> None:
    # -t without -i needs no terminal on the client side; the output carries the pty's CRLF.
    proc = box.cli(
        "run",
        "--rm",
        "--network",
        "none",
        "-t",
        box.image,
        "sh",
        "-c",
        "tty; echo line",
        input=b"",
    )
    assert proc.returncode == 0, proc.stderr
    assert isinstance(proc.stdout, bytes)
    assert re.fullmatch(rb"/dev/pts/\d+\r\nline\r\n", proc.stdout), proc.stdout


def test_run_t_exit_code(box: Box) -> None:
    proc = box.run("--rm", "-t", box.image, "sh", "-c", "exit 4")
    assert proc.returncode == 4


def test_run_it_interactive_shell(box: Box) -> None:
    name = box.name()
    with PtyCLI(
        box.cli, "run", "-it", "--name", name, "--network", "none", box.image, "sh"
    ) as term:
        term.expect(PROMPT)
        term.send(b"echo $((6*7)); tty\r")
        term.expect(rb"\r\n42\r\n/dev/pts/\d+\r\n")
        term.expect(PROMPT)
        term.send(b"exit 5\r")
        assert term.wait() == 5
    state = box.state(name)
    assert (state["Status"], state["ExitCode"]) == ("exited", 5)


def test_run_it_initial_size_and_resize(box: Box) -> None:
    name = box.name()
    with PtyCLI(
        box.cli,
        "run",
        "-it",
        "--rm",
        "--name",
        name,
        "--network",
        "none",
        box.image,
        "sh",
        rows=24,
        cols=80,
    ) as term:
        term.expect(PROMPT)
        term.send(b"stty size\r")
        term.expect(rb"\r\n24 80\r\n")
        term.expect(PROMPT)
        term.resize(40, 120)
        # The resize reaches the container asynchronously; ask until it shows.
        for _ in range(20):
            term.send(b"stty size\r")
            match = term.expect(rb"\r\n(\d+ \d+)\r\n")
            term.expect(PROMPT)
            if match.group(1) == b"40 120":
                break
        else:
            raise AssertionError(
                f"resize never reached the container; transcript:\n{term.transcript!r}"
            )
        term.send(b"exit\r")
        assert term.wait() == 0


def test_detach_with_ctrl_p_ctrl_q_leaves_container_running(box: Box) -> None:
    name = box.name()
    with PtyCLI(
        box.cli, "run", "-it", "--name", name, "--network", "none", box.image, "sh"
    ) as term:
        term.expect(PROMPT)
        term.send(b"echo before-detach > /tmp/mark\r")
        term.expect(PROMPT)
        term.send(b"\x10\x11")  # ctrl-p ctrl-q
        assert term.wait() == 0
    state = box.state(name)
    assert state["Running"] is True, state
    assert box.ok("exec", name, "cat", "/tmp/mark") == "before-detach\n"


def test_custom_detach_keys(box: Box) -> None:
    name = box.name()
    with PtyCLI(
        box.cli,
        "run",
        "-it",
        "--detach-keys",
        "ctrl-a,x",
        "--name",
        name,
        "--network",
        "none",
        box.image,
        "sh",
    ) as term:
        term.expect(PROMPT)
        term.send(b"\x01x")
        assert term.wait() == 0
    assert box.state(name)["Running"] is True


def test_attach_after_detach(box: Box) -> None:
    name = box.run_d("-it", box.image, "sh")
    with PtyCLI(box.cli, "attach", name) as term:
        term.send(b"echo attached-$((1+1))\r")
        term.expect(rb"attached-2\r\n")
        term.send(b"exit 6\r")
        assert term.wait() == 6
    assert box.wait_exited(name)["ExitCode"] == 6


def test_exec_it_under_a_terminal(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    with PtyCLI(box.cli, "exec", "-it", name, "sh", rows=33, cols=99) as term:
        term.expect(PROMPT)
        term.send(b"stty size; echo $$\r")
        match = term.expect(rb"\r\n33 99\r\n(\d+)\r\n")
        assert int(match.group(1)) > 1
        term.expect(PROMPT)
        term.send(b"exit 9\r")
        assert term.wait() == 9


def test_exec_t_prints_a_pts(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    proc = box.cli("exec", "-t", name, "tty", input=b"", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(proc.stdout, bytes)
    assert re.fullmatch(rb"/dev/pts/\d+\r\n", proc.stdout), proc.stdout
