"""Attach and exec streams through docker-py: detach keys from the client (``detachKeys`` on
create (body, also taken from docker-py's config file ``detachKeys``), in Docker's
``ctrl-x,x`` notation. Typing them ends the hijacked stream; an attached container keeps
running (an exec's tty may hang up with it on dockerd)."""

from __future__ import annotations

import socket
from typing import Any

import docker
import docker.errors
import pytest

from conformance.containerkit import unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)


def _raw(sock: Any) -> socket.socket:
    raw = getattr(sock, "_sock", sock)
    assert isinstance(raw, socket.socket)
    raw.settimeout(20)
    return raw


def _read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(4096)
        assert chunk, f"stream ended before {needle!r}: {data!r}"
        data += chunk
    return data


def _detaches(sock: socket.socket, keys: list[bytes]) -> bytes:
    """Echo a line through the tty, type the keys; returns what came after them until EOF."""
    sock.sendall(b"before\n")
    _read_until(sock, b"before\r\nbefore\r\n")  # the pty's echo, then cat's copy
    for key in keys:
        sock.sendall(key)
    rest = b""
    while chunk := sock.recv(4096):  # EOF: the daemon ended the stream
        rest += chunk
    return rest


@pytest.fixture
def cat(api_client: docker.APIClient, tracker: ResourceTracker, busybox_image: str) -> str:
    name = tracker.container(unique("detach"))
    api_client.create_container(busybox_image, "cat", name=name, stdin_open=True, tty=True,
                                host_config=api_client.create_host_config(network_mode="none"))
    api_client.start(name)
    return name


def test_attach_detach_keys_query(api_client: docker.APIClient, cat: str) -> None:
    sock = _raw(api_client.attach_socket(cat, {"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-x,x"}))
    try:
        rest = _detaches(sock, [b"\x18", b"x"])
    finally:
        sock.close()
    assert b"before" not in rest
    assert api_client.inspect_container(cat)["State"]["Running"] is True


def test_invalid_detach_keys(api_client: docker.APIClient, cat: str) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        api_client.exec_create(cat, "true", detach_keys="ctrl-")
    assert (err.value.status_code, err.value.explanation) == (500, "Invalid escape keys (ctrl-) provided")
    with pytest.raises(docker.errors.APIError) as err:
        api_client.exec_create(cat, "true", detach_keys="ab")
    assert (err.value.status_code, err.value.explanation) == (500, "Invalid escape keys (ab) provided")
    assert api_client.exec_inspect(api_client.exec_create(cat, "true")["Id"])["DetachKeys"] == ""


@pytest.mark.parametrize("how", ["argument", "config file"])
def test_exec_detach_keys(api_client: docker.APIClient, cat: str, how: str) -> None:
    if how == "config file":
        api_client._general_configs["detachKeys"] = "ctrl-x,x"
        exec_id = api_client.exec_create(cat, "cat", stdin=True, tty=True)["Id"]
    else:
        exec_id = api_client.exec_create(cat, "cat", stdin=True, tty=True, detach_keys="ctrl-x,x")["Id"]
    assert api_client.exec_inspect(exec_id)["DetachKeys"] == "GHg="  # the keys' bytes, base64
    sock = _raw(api_client.exec_start(exec_id, tty=True, socket=True))
    try:
        rest = _detaches(sock, [b"\x18x"])
    finally:
        sock.close()
    # dockerd may say why the stream ended ("... read escape sequence"), nothing else
    assert rest == b"" or b"read escape sequence" in rest, rest


def test_pydockerd_attach_logs_without_stream_returns_the_output(
    api_client: docker.APIClient, tracker: ResourceTracker, busybox_image: str, engine_kind: str
) -> None:
    """``attach?logs=1&stream=0`` after exit: the logged output, every time (docker-py reads
    the stream from under its buffered header reader, so nothing may ride with the head).
    pydockerd only: dockerd 20.10 loses the output now and then itself (docker-py's own
    test_attach_no_stream fails on it)."""
    if engine_kind != "pydockerd":
        pytest.skip("dockerd races here itself")
    for n in range(5):
        name = tracker.container(unique("attachlogs"))
        api_client.create_container(busybox_image, ["sh", "-c", f"echo out-{n}; echo err-{n} >&2"], name=name,
                                    host_config=api_client.create_host_config(network_mode="none"))
        api_client.start(name)
        api_client.wait(name, condition="not-running")
        assert api_client.attach(name, stream=False, logs=True, stdout=True, stderr=False) == f"out-{n}\n".encode()
        both = api_client.attach(name, stream=False, logs=True, demux=True)
        assert both == (f"out-{n}\n".encode(), f"err-{n}\n".encode())
