from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import docker  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from compat_api.streams.hijack import MULTIPLEXED_STREAM, RAW_STREAM, HijackedStream, hijack
from compat_api.streams.stdcopy import StreamType, encode_frame

EXTRA = {"Api-Version": "1.50", "Ostype": "linux"}


@dataclass
class Server:
    path: str
    bodies: list[object] = field(default_factory=list)
    after_hijack: list[str] = field(default_factory=list)


async def echo_upper(request: web.Request) -> web.StreamResponse:
    """Reads the JSON body, hijacks, echoes stdin uppercased, then says BYE after EOF."""
    server: Server = request.app["server"]
    server.bodies.append(await request.json() if request.can_read_body else None)
    stream = await hijack(request, content_type=RAW_STREAM, extra_headers=EXTRA)
    try:
        while chunk := await stream.read(7):
            await stream.send(chunk.upper())
        # The client has half-closed: we must still be able to write.
        await stream.send(b"BYE\n")
        stream.close_write()
        # After our half-close the client closes too; reading sees the end.
        assert await stream.read() == b""
        server.after_hijack.append("done")
    finally:
        return stream.response


async def frames_then_close(request: web.Request) -> web.StreamResponse:
    """Writes stdcopy output the instant the hijack returns, like a fast exec."""
    body = await request.json()
    stream = await hijack(request, content_type=MULTIPLEXED_STREAM)
    if not body.get("Tty"):
        stream.write(encode_frame(StreamType.STDOUT, b"out-1\n"))
        stream.write(encode_frame(StreamType.STDERR, b"err-1\n"))
    await stream.drain()
    stream.close_write()
    return stream.response


async def stdin_to_frames(request: web.Request) -> web.StreamResponse:
    """exec -i: forwards stdin as stdout frames until the client half-closes."""
    await request.read()
    stream = await hijack(request, content_type=MULTIPLEXED_STREAM)
    received = b""
    while chunk := await stream.read():
        received += chunk
    await stream.send(encode_frame(StreamType.STDOUT, b"got:" + received))
    stream.close_write()
    return stream.response


async def not_found(request: web.Request) -> web.StreamResponse:
    return web.json_response({"message": "No such exec instance: nope"}, status=404)


async def fail_after_hijack(request: web.Request) -> web.StreamResponse:
    stream = await hijack(request, content_type=RAW_STREAM)
    await stream.send(b"partial")
    raise RuntimeError("backend blew up")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    directory = tempfile.mkdtemp(prefix="hj", dir="/tmp")
    state = Server(path=str(Path(directory) / "s.sock"))
    app = web.Application()
    app["server"] = state
    app.router.add_post("/v1.44/exec/{id}/start", frames_then_close)
    app.router.add_post("/v1.44/exec/stdin/start", stdin_to_frames)
    app.router.add_post("/echo", echo_upper)
    app.router.add_post("/fail", fail_after_hijack)
    app.router.add_post("/missing", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, state.path).start()
    try:
        yield state
    finally:
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def request_bytes(path: str, body: bytes = b"", *, upgrade: bool = True) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: docker", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    if upgrade:
        head += ["Connection: Upgrade", "Upgrade: tcp"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def test_upgrade_echo_half_close(server: Server) -> None:
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(request_bytes("/echo", b'{"Tty":false}'))
    head = await read_head(reader)
    assert head == (
        b"HTTP/1.1 101 UPGRADED\r\n"
        b"Content-Type: application/vnd.docker.raw-stream\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Api-Version: 1.50\r\nOstype: linux\r\n\r\n"
    )
    writer.write(b"hello ")
    assert await asyncio.wait_for(reader.readexactly(6), 5) == b"HELLO "
    # Looks like a pipelined HTTP request, but after the hijack it is just stdin.
    writer.write(b"GET /ping HTTP/1.1\r\n\r\n")
    writer.write_eof()
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest == b"GET /PING HTTP/1.1\r\n\r\nBYE\n"
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if server.after_hijack:
            break
        await asyncio.sleep(0.01)
    assert server.bodies == [{"Tty": False}]
    assert server.after_hijack == ["done"]


async def test_bytes_in_the_same_packet_as_the_request_are_kept(server: Server) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, server.path)
    # One send: headers, JSON body and the first stdin bytes.
    await loop.sock_sendall(sock, request_bytes("/echo", b"{}") + b"x")
    received = b""
    while b"\r\n\r\n" not in received:
        received += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
    # Real clients half-close only after the 101: aiohttp closes on an earlier EOF.
    sock.shutdown(socket.SHUT_WR)
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 4096), 5):
        received += chunk
    sock.close()
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert payload == b"XBYE\n"


async def test_without_upgrade_replies_200_raw_stream(server: Server) -> None:
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(request_bytes("/echo", b"{}", upgrade=False))
    head = await read_head(reader)
    assert head == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        b"Api-Version: 1.50\r\nOstype: linux\r\n\r\n"
    )
    writer.write(b"abc")
    writer.write_eof()
    # No chunked framing and no Content-Length: raw bytes until close.
    assert await asyncio.wait_for(reader.read(), 5) == b"ABCBYE\n"
    writer.close()


async def test_error_after_hijack_closes_without_http_response(server: Server) -> None:
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(request_bytes("/fail"))
    head = await read_head(reader)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b"partial"
    writer.close()


async def test_upgrade_request_that_is_not_hijacked_gets_a_normal_response(server: Server) -> None:
    reader, writer = await asyncio.open_unix_connection(server.path)
    writer.write(request_bytes("/missing", b"{}"))
    head = await read_head(reader)
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1])
    assert await asyncio.wait_for(reader.readexactly(length), 5) == b'{"message": "No such exec instance: nope"}'
    writer.close()


async def test_header_block_is_not_coalesced_with_first_payload(server: Server) -> None:
    # A client blocked in recv() must get the header block alone, as docker-py needs.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, server.path)
    await loop.sock_sendall(sock, request_bytes("/v1.44/exec/abc/start", b'{"Tty":false}'))
    first = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
    sock.close()
    assert first.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert first.endswith(b"\r\n\r\n")


async def test_payload_waits_until_a_late_client_has_read_the_header_block(server: Server) -> None:
    # A client scheduled late (after the payload was ready) must still find the header
    # block alone in its first recv(): the payload is held until the header is read.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, server.path)
    await loop.sock_sendall(sock, request_bytes("/v1.44/exec/abc/start", b'{"Tty":false}'))
    await asyncio.sleep(0.3)  # far longer than HEADER_SETTLE_DELAY: the old fixed wait lost here
    first = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
    rest = b""
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
        rest += chunk
    sock.close()
    assert first.startswith(b"HTTP/1.1 101 UPGRADED\r\n") and first.endswith(b"\r\n\r\n")
    assert b"out-1\n" in rest and b"err-1\n" in rest


def _docker_client(path: str) -> docker.APIClient:
    # An explicit version skips docker-py's GET /version negotiation.
    return docker.APIClient(base_url=f"unix://{path}", version="1.44", timeout=10)


async def test_docker_py_exec_start_demuxes_output(server: Server) -> None:
    def run() -> object:
        with _docker_client(server.path) as client:
            return client.exec_start("abc", demux=True)

    out = await asyncio.to_thread(run)
    assert out == (b"out-1\n", b"err-1\n")


async def test_docker_py_socket_half_close(server: Server) -> None:
    def run() -> bytes:
        with _docker_client(server.path) as client:
            sock = client.exec_start("stdin", socket=True)
            raw: socket.socket = sock._sock
            raw.sendall(b"line-1\n")
            raw.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := raw.recv(4096):
                data += chunk
            sock.close()
            return data

    data = await asyncio.to_thread(run)
    assert data == encode_frame(StreamType.STDOUT, b"got:line-1\n")


async def test_stream_reports_eof_and_loss(server: Server) -> None:
    seen: list[object] = []
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        stream: HijackedStream = await hijack(request, content_type=RAW_STREAM, settle_delay=0)
        seen.append(await stream.read())
        seen.append(stream.at_eof)
        # A full close looks like a half-close until a write hits the closed socket.
        stream.write(b"late")
        await asyncio.wait_for(stream.wait_closed(), 5)
        seen.append(stream.is_closing)
        with pytest.raises(ConnectionResetError):
            stream.write(b"later")
        with pytest.raises(ConnectionResetError):
            await stream.drain()
        done.set()
        return stream.response

    app = web.Application()
    app.router.add_post("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    path = server.path + ".2"
    await web.UnixSite(runner, path).start()
    try:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(request_bytes("/x"))
        await read_head(reader)
        writer.close()  # full close, not a half-close
        await asyncio.wait_for(done.wait(), 5)
        assert seen == [b"", True, True]
    finally:
        await runner.cleanup()

