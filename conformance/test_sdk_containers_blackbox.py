"""Containers through docker-py 7.1 as users' code drives them: containers.run (attached and
detached), exec_run (plain, stream, demux), logs(stream=True), wait, stop, kill, remove and
attach_socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from docker.utils.socket import STDERR, STDOUT, next_frame_header, read_exactly

from conformance.containerkit import unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

NET = {"network_mode": "none"}


@pytest.fixture
def run(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> Iterator[Any]:
    """``run(cmd, **kwargs)``: client.containers.run on busybox with a tracked, unique name."""

    def _run(command: Any, **kwargs: Any) -> Any:
        name = kwargs.pop("name", None) or unique("sdk")
        tracker.container(name)
        return client.containers.run(busybox_image, command, name=name, **NET, **kwargs)

    yield _run


@pytest.fixture
def sleeper(run: Any) -> Container:
    container = run(["sleep", "300"], detach=True)
    assert isinstance(container, Container)
    return container


# --- containers.run ---------------------------------------------------------------------------


def test_run_returns_logs(run: Any) -> None:
    assert run(["echo", "hello"], remove=True) == b"hello\n"


def test_run_stdout_and_stderr(run: Any) -> None:
    out = run(
        ["sh", "-c", "echo out; echo err >&2"], stdout=True, stderr=True, remove=True
    )
    assert sorted(out.splitlines()) == [b"err", b"out"]
    assert (
        run(
            ["sh", "-c", "echo out; echo err >&2"],
            stdout=False,
            stderr=True,
            remove=True,
        )
        == b"err\n"
    )


def test_run_nonzero_raises_container_error(run: Any, busybox_image: str) -> None:
    with pytest.raises(docker.errors.ContainerError) as info:
        run(["sh", "-c", "echo oops >&2; exit 3"])
    assert info.value.exit_status == 3
    assert info.value.stderr == b"oops\n"
    assert info.value.image == busybox_image


def test_run_missing_executable_raises_api_error(run: Any) -> None:
    with pytest.raises(docker.errors.APIError) as info:
        run(["/no/such"])
    assert info.value.status_code == 400
    assert 'exec: "/no/such": stat /no/such: no such file or directory' in str(
        info.value.explanation
    )


def test_create_missing_image_raises_image_not_found(
    client: docker.DockerClient,
) -> None:
    # containers.create does not pull (containers.run would, so it is not used here).
    image = f"{unique('nosuchimage')}:latest"
    with pytest.raises(docker.errors.ImageNotFound) as info:
        client.containers.create(image, "true", **NET)
    assert info.value.status_code == 404
    assert f"No such image: {image}" in str(info.value)


def test_run_detached(run: Any, client: docker.DockerClient) -> None:
    container = run(
        ["sh", "-c", "echo started; sleep 300"],
        detach=True,
        labels={"sdk": "yes"},
        environment={"A": "1"},
    )
    assert isinstance(container, Container)
    container.reload()
    assert container.status == "running"
    assert container.labels == {"sdk": "yes"}
    assert "A=1" in container.attrs["Config"]["Env"]
    assert client.containers.get(container.name).id == container.id
    assert client.containers.get(container.id[:12]).id == container.id
    listed = client.containers.list(filters={"label": "sdk=yes", "id": container.id})
    assert [c.id for c in listed] == [container.id]


def test_run_with_options(run: Any) -> None:
    out = run(
        ["sh", "-c", 'id; pwd; hostname; echo "$FOO"'],
        user="65534:65534",
        working_dir="/tmp",
        hostname="sdkhost",
        environment=["FOO=bar"],
        remove=True,
    )
    assert out.decode().splitlines() == [
        "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)",
        "/tmp",
        "sdkhost",
        "bar",
    ]


def test_run_entrypoint(run: Any) -> None:
    assert run(["hi"], entrypoint=["echo"], remove=True) == b"hi\n"


def test_create_start_wait(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    name = tracker.container(unique("sdk"))
    container = client.containers.create(
        busybox_image, ["sh", "-c", "exit 9"], name=name, **NET
    )
    assert container.status == "created"
    container.start()
    assert container.wait(timeout=30) == {"StatusCode": 9, "Error": None}
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 9


# --- wait / stop / kill / remove --------------------------------------------------------------


def test_wait_blocks_until_exit(run: Any) -> None:
    container = run(["sh", "-c", "sleep 1; exit 4"], detach=True)
    started = time.monotonic()
    result = container.wait(timeout=30)
    assert result["StatusCode"] == 4
    assert time.monotonic() - started >= 0.5


def test_wait_condition_not_running_on_exited(run: Any) -> None:
    container = run(["sh", "-c", "exit 2"], detach=True)
    container.wait(timeout=30)
    assert container.wait(timeout=30, condition="not-running")["StatusCode"] == 2


def test_wait_condition_removed(run: Any) -> None:
    container = run(["sh", "-c", "sleep 0.5; exit 6"], detach=True, auto_remove=True)
    assert container.wait(timeout=30, condition="removed")["StatusCode"] == 6
    with pytest.raises(docker.errors.NotFound):
        container.reload()


def test_wait_timeout(sleeper: Container) -> None:
    with pytest.raises(Exception) as info:  # requests' ReadTimeout / ConnectionError
        sleeper.wait(timeout=1)
    assert (
        "timed out" in str(info.value).lower()
        or "timeout" in type(info.value).__name__.lower()
    )


def test_stop(run: Any) -> None:
    container = run(
        [
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
        ],
        detach=True,
    )
    time.sleep(0.3)
    container.stop(timeout=10)
    container.reload()
    assert container.status == "exited"
    assert container.attrs["State"]["ExitCode"] == 0
    assert container.logs() == b"got-term\n"


def test_stop_escalates_to_kill(sleeper: Container) -> None:
    started = time.monotonic()
    sleeper.stop(timeout=1)  # sleep as PID 1 ignores SIGTERM
    assert time.monotonic() - started < 10
    sleeper.reload()
    assert sleeper.attrs["State"]["ExitCode"] == 137


def test_kill(sleeper: Container) -> None:
    sleeper.kill()
    assert sleeper.wait(timeout=30)["StatusCode"] == 137


def test_kill_with_signal(run: Any) -> None:
    container = run(
        [
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done",
        ],
        detach=True,
    )
    time.sleep(0.3)
    container.kill(signal="SIGUSR1")
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert container.logs() == b"got-usr1\n"


def test_kill_not_running_is_409(run: Any) -> None:
    container = run(["true"], detach=True)
    container.wait(timeout=30)
    with pytest.raises(docker.errors.APIError) as info:
        container.kill()
    assert info.value.status_code == 409
    assert "is not running" in str(info.value.explanation)


def test_remove(client: docker.DockerClient, sleeper: Container) -> None:
    with pytest.raises(docker.errors.APIError) as info:
        sleeper.remove()
    assert info.value.status_code == 409
    sleeper.remove(force=True)
    with pytest.raises(docker.errors.NotFound) as missing:
        client.containers.get(sleeper.id)
    assert f"No such container: {sleeper.id}" in str(missing.value.explanation)


def test_rename_and_restart(sleeper: Container) -> None:
    new = unique("sdkrenamed")
    sleeper.rename(new)
    sleeper.reload()
    assert sleeper.name == new
    before = sleeper.attrs["State"]["StartedAt"]
    sleeper.restart(timeout=1)
    sleeper.reload()
    assert sleeper.status == "running"
    assert sleeper.attrs["State"]["StartedAt"] != before
    sleeper.remove(force=True)  # the tracker knows only the old name


# --- logs --------------------------------------------------------------------------------------


def test_logs_stream_follows_until_exit(run: Any) -> None:
    container = run(
        ["sh", "-c", "echo one; sleep 0.5; echo two; sleep 0.5; echo three"],
        detach=True,
    )
    chunks = list(container.logs(stream=True, follow=True))
    assert b"".join(chunks) == b"one\ntwo\nthree\n"
    assert len(chunks) >= 2, "follow did not stream lines as they came"


def test_logs_options(run: Any) -> None:
    # stderr first, with a pause: the two pipes are read independently, so only a gap orders them.
    container = run(
        ["sh", "-c", "echo e >&2; sleep 0.3; for i in 1 2 3 4; do echo l$i; done"],
        detach=True,
    )
    container.wait(timeout=30)
    assert container.logs(stdout=True, stderr=False) == b"l1\nl2\nl3\nl4\n"
    assert container.logs(stdout=False, stderr=True) == b"e\n"
    assert container.logs(tail=2) == b"l3\nl4\n"
    assert container.logs(tail=5) == b"e\nl1\nl2\nl3\nl4\n"
    stamped = container.logs(timestamps=True, tail=1).decode()
    assert stamped.endswith("Z l4\n") and stamped[:4].isdigit(), stamped


def test_logs_tty_container_is_raw(run: Any) -> None:
    container = run(["sh", "-c", "echo tty-out"], detach=True, tty=True)
    container.wait(timeout=30)
    assert container.logs() == b"tty-out\r\n"


# --- exec_run ---------------------------------------------------------------------------------


def test_exec_run(sleeper: Container) -> None:
    result = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert sorted(result.output.splitlines()) == [b"err", b"out"]


def test_exec_run_options(sleeper: Container) -> None:
    result = sleeper.exec_run(
        ["sh", "-c", 'id -u; pwd; echo "$X"'],
        user="65534",
        workdir="/tmp",
        environment={"X": "y"},
    )
    assert (result.exit_code, result.output) == (0, b"65534\n/tmp\ny\n")


def test_exec_run_demux(sleeper: Container) -> None:
    result = sleeper.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.exit_code == 0
    assert result.output == (b"out\n", b"err\n")
    result = sleeper.exec_run(["echo", "only-out"], demux=True)
    assert result.output == (b"only-out\n", None)


def test_exec_run_stream(sleeper: Container) -> None:
    result = sleeper.exec_run(
        ["sh", "-c", "echo a; sleep 0.3; echo b; sleep 0.3; echo c"], stream=True
    )
    assert result.exit_code is None
    chunks = list(result.output)
    assert b"".join(chunks) == b"a\nb\nc\n"
    assert len(chunks) >= 2


def test_exec_run_stream_demux(sleeper: Container) -> None:
    result = sleeper.exec_run(
        ["sh", "-c", "echo out; sleep 0.2; echo err >&2"], stream=True, demux=True
    )
    frames = list(result.output)
    assert (b"out\n", None) in frames and (None, b"err\n") in frames


def test_exec_run_tty(sleeper: Container) -> None:
    result = sleeper.exec_run(["sh", "-c", "tty; echo err >&2"], tty=True)
    assert result.exit_code == 0
    lines = result.output.split(b"\r\n")
    assert lines[0].startswith(b"/dev/pts/") and lines[1] == b"err", result.output


def test_exec_run_detach(sleeper: Container) -> None:
    result = sleeper.exec_run(["sh", "-c", "echo bg > /tmp/bg"], detach=True)
    # docker-py inspects the exec right after starting it: not finished yet (None) or done (0).
    assert result.exit_code in (None, 0) and not result.output
    deadline = time.monotonic() + 10
    while sleeper.exec_run(["cat", "/tmp/bg"]).output != b"bg\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_exec_inspect_exit_code(
    api_client: docker.APIClient, sleeper: Container
) -> None:
    exec_id = api_client.exec_create(
        sleeper.id, ["sh", "-c", "exit 11"], user="nobody", workdir="/tmp"
    )["Id"]
    info = api_client.exec_inspect(exec_id)
    assert (info["Running"], info["ExitCode"], info["ContainerID"]) == (
        False,
        None,
        sleeper.id,
    )
    assert info["ProcessConfig"]["user"] == "nobody"
    assert api_client.exec_start(exec_id) == b""
    info = api_client.exec_inspect(exec_id)
    assert (info["Running"], info["ExitCode"]) == (False, 11)
    assert info["Pid"] > 0


def test_exec_socket_with_stdin(sleeper: Container) -> None:
    result = sleeper.exec_run(["cat"], stdin=True, socket=True)
    sock = _raw(result.output)
    sock.sendall(b"through-exec\n")
    sock.shutdown(socket.SHUT_WR)
    assert _read_frames(sock) == [(STDOUT, b"through-exec\n")]


def test_exec_in_stopped_container_is_409(run: Any) -> None:
    container = run(["true"], detach=True)
    container.wait(timeout=30)
    with pytest.raises(docker.errors.APIError) as info:
        container.exec_run(["true"])
    assert info.value.status_code == 409
    assert f"Container {container.id} is not running" in str(info.value.explanation)


# --- attach_socket ----------------------------------------------------------------------------


def _raw(sock: Any) -> socket.socket:
    """docker-py hands out a SocketIO wrapper or the socket itself."""
    raw = getattr(sock, "_sock", sock)
    assert isinstance(raw, socket.socket)
    raw.settimeout(20)
    return raw


def _read_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read stdcopy frames until EOF, merging consecutive frames of one stream."""
    frames: list[tuple[int, bytes]] = []
    while True:
        stream, size = next_frame_header(sock)
        if stream == -1:
            return frames
        data = read_exactly(sock, size)
        if frames and frames[-1][0] == stream:
            frames[-1] = (stream, frames[-1][1] + data)
        else:
            frames.append((stream, data))


def test_attach_socket_stdin_and_stdout(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    name = tracker.container(unique("sdkattach"))
    container = client.containers.create(
        busybox_image,
        ["sh", "-c", "read line; echo got-$line; echo to-err >&2"],
        name=name,
        stdin_open=True,
        **NET,
    )
    sock = _raw(
        container.attach_socket(
            params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
    )
    try:
        container.start()
        sock.sendall(b"hello\n")
        frames = _read_frames(sock)
    finally:
        sock.close()
    assert sorted(frames) == sorted([(STDOUT, b"got-hello\n"), (STDERR, b"to-err\n")])
    assert container.wait(timeout=30)["StatusCode"] == 0


def test_attach_socket_tty_is_raw(
    client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str
) -> None:
    name = tracker.container(unique("sdkattachtty"))
    container = client.containers.create(
        busybox_image,
        ["sh", "-c", "read line; echo got-$line"],
        name=name,
        stdin_open=True,
        tty=True,
        **NET,
    )
    sock = _raw(container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1}))
    try:
        container.start()
        sock.sendall(b"pty\n")
        data = b""
        while b"got-pty\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    assert b"got-pty\r\n" in data, (
        data
    )  # the pty echoes the input, then the answer; no framing
    assert container.wait(timeout=30)["StatusCode"] == 0
