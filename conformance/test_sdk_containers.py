"""Containers through docker-py 7.1: run (attached and detached), exec_run (stream, demux),
logs (stream), wait, stop, kill, remove, attach_socket."""

from __future__ import annotations

import socket
import time

import docker
import pytest

from conformance.containerkit import unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def named(tracker: ResourceTracker):  # type: ignore[no-untyped-def]
    def make() -> str:
        return tracker.container(unique("sdk"))
    return make


def test_run_returns_logs(client: docker.DockerClient, busybox_image: str) -> None:
    out = client.containers.run(busybox_image, ["sh", "-c", "echo out; echo err >&2"],
                                remove=True, network_mode="none")
    assert out == b"out\n"
    both = client.containers.run(busybox_image, ["sh", "-c", "echo out; echo err >&2"],
                                 remove=True, stderr=True, network_mode="none")
    assert sorted(both.splitlines()) == [b"err", b"out"]


def test_run_nonzero_raises_container_error(client: docker.DockerClient, busybox_image: str,
                                            named) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ContainerError) as exc:
        client.containers.run(busybox_image, ["sh", "-c", "echo bad >&2; exit 3"], name=named(),
                              network_mode="none")
    assert exc.value.exit_status == 3 and b"bad" in exc.value.stderr


def test_run_unknown_image_is_image_not_found(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create(f"{unique('nosuch')}:latest")


def test_detached_lifecycle(client: docker.DockerClient, busybox_image: str,
                            named) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.run(busybox_image, ["sh", "-c", "trap 'exit 0' TERM; while true; do echo tick; sleep 0.1; done"],
                              detach=True, name=named(), network_mode="none", labels={"k": "v"})
    c.reload()
    assert c.status == "running" and c.labels == {"k": "v"}
    assert client.containers.get(c.name).id == c.id
    assert c.id in [x.id for x in client.containers.list(filters={"label": "k=v"})]
    stream = c.logs(stream=True)
    assert next(stream) == b"tick\n"
    c.stop(timeout=5)
    assert c.wait() == {"StatusCode": 0, "Error": None}
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 0
    c.start()
    c.kill()
    assert c.wait()["StatusCode"] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_exec_run_variants(client: docker.DockerClient, busybox_image: str,
                           named) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.run(busybox_image, ["sleep", "300"], detach=True, name=named(),
                              network_mode="none")
    result = c.exec_run(["sh", "-c", "echo a; echo b >&2; exit 2"])
    assert result.exit_code == 2 and sorted(result.output.splitlines()) == [b"a", b"b"]
    demux = c.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True)
    assert demux.exit_code == 0 and demux.output == (b"a\n", b"b\n")
    streamed = c.exec_run(["sh", "-c", "echo s1; sleep 0.2; echo s2"], stream=True)
    assert b"".join(streamed.output) == b"s1\ns2\n"
    env = c.exec_run(["sh", "-c", "echo $X; id -u; pwd"], environment={"X": "y"}, user="65534",
                     workdir="/tmp")
    assert env.output == b"y\n65534\n/tmp\n"
    tty = c.exec_run("tty", tty=True)
    assert tty.output.startswith(b"/dev/pts/")
    c.kill()


def test_attach_socket(client: docker.DockerClient, api_client: docker.APIClient,
                       busybox_image: str, named) -> None:  # type: ignore[no-untyped-def]
    c = client.containers.create(busybox_image, ["cat"], stdin_open=True, name=named(),
                                 network_mode="none")
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    c.start()
    raw.sendall(b"hello\n")
    data = b""
    deadline = time.monotonic() + 10
    while len(data) < 14 and time.monotonic() < deadline:
        data += raw.recv(100)
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
    # docker-py sets StdinOnce with stdin_open: our EOF closes cat's stdin and it exits
    raw.shutdown(socket.SHUT_WR)
    assert c.wait(timeout=10)["StatusCode"] == 0
    sock.close()
