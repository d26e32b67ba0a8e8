from __future__ import annotations

import asyncio
import socket

import pytest

from runtime.errors import InvalidParameter, SystemError_
from runtime.network.contract import PortBindingSpec
from runtime.network.portmap import (
    PortAllocator,
    PortRequest,
    close_all,
    exposed_keys,
    parse_port_key,
    port_requests,
    publish,
    render_ports,
)


def test_parse_port_key() -> None:
    assert parse_port_key("80/tcp") == (80, "tcp")
    assert parse_port_key("53/UDP") == (53, "udp")
    assert parse_port_key("8080") == (8080, "tcp")
    with pytest.raises(InvalidParameter):
        parse_port_key("x/tcp")
    with pytest.raises(InvalidParameter):
        parse_port_key("80/icmp")


def test_port_requests_expansion() -> None:
    reqs = port_requests(
        ["80/tcp", "443/tcp", "53/udp"],
        {"80/tcp": (PortBindingSpec("127.0.0.1", "8080"), PortBindingSpec("", "8081")),
         "9000/tcp": (PortBindingSpec("", "9000-9010"),), "53/udp": None},
        publish_all=True,
    )
    assert reqs == [
        PortRequest(80, "tcp", "127.0.0.1", 8080, 8080),
        PortRequest(80, "tcp", "", 8081, 8081),
        PortRequest(443, "tcp", ""),  # -P: exposed without a binding
        PortRequest(9000, "tcp", "", 9000, 9010),
        PortRequest(53, "udp", ""),
    ]
    assert port_requests(["443/tcp"], {}, publish_all=False) == []
    with pytest.raises(InvalidParameter, match="Error parsing HostPort value"):
        port_requests([], {"80/tcp": (PortBindingSpec("", "99999"),)}, False)
    assert exposed_keys(["80/tcp", "53/udp", "8/tcp"], {}) == ["8/tcp", "80/tcp", "53/udp"]


def test_allocator_round_robin_and_conflicts() -> None:
    alloc = PortAllocator((40000, 40002))
    assert [alloc.request(["0.0.0.0"], "tcp", 0, 0) for _ in range(3)] == [40000, 40001, 40002]
    with pytest.raises(SystemError_, match="all ports are allocated"):
        alloc.request(["0.0.0.0"], "tcp", 0, 0)
    alloc.release("0.0.0.0", "tcp", 40001)
    assert alloc.request(["0.0.0.0"], "tcp", 0, 0) == 40001
    assert alloc.request(["0.0.0.0", "::"], "udp", 8080, 8080) == 8080
    with pytest.raises(SystemError_) as err:
        alloc.request(["0.0.0.0", "::"], "udp", 8080, 8080)
    assert str(err.value) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    assert alloc.request(["127.0.0.1"], "udp", 8080, 8080) == 8080  # another address
    assert alloc.request(["0.0.0.0"], "udp", 8080, 8082) == 8081


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_proxy_with_half_close() -> None:
    async def echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client half-closes
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(echo_upper, "127.0.0.1", 0)
    cport = backend.sockets[0].getsockname()[1]
    hport = _free_port()
    alloc = PortAllocator()
    bindings = await publish([PortRequest(cport, "tcp", "127.0.0.1", hport, hport)], "127.0.0.1", alloc, False)
    try:
        assert [b.describe() for b in bindings] == [f"127.0.0.1:{hport}:127.0.0.1:{cport}/tcp"]
        reader, writer = await asyncio.open_connection("127.0.0.1", hport)
        writer.write(b"hello")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b"HELLO"
        writer.close()
        assert render_ports(["80/tcp", f"{cport}/tcp"], bindings) == {
            "80/tcp": None, f"{cport}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(hport)}]
        }
    finally:
        await close_all(bindings, alloc)
        backend.close()
    assert alloc.in_use("127.0.0.1", "tcp") == set()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", hport)


async def test_udp_proxy() -> None:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.t.sendto(b"re:" + data, addr)  # type: ignore[attr-defined]

    echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    cport = echo.get_extra_info("sockname")[1]
    hport = _free_port(socket.SOCK_DGRAM)
    alloc = PortAllocator()
    bindings = await publish([PortRequest(cport, "udp", "127.0.0.1", hport, hport)], "127.0.0.1", alloc, False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    try:
        client.connect(("127.0.0.1", hport))
        for msg in (b"one", b"two"):
            await loop.sock_sendall(client, msg)
            assert await asyncio.wait_for(loop.sock_recv(client, 100), 5) == b"re:" + msg
    finally:
        client.close()
        await close_all(bindings, alloc)
        echo.close()


async def test_bind_failure_message_and_rollback() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    free = _free_port()
    alloc = PortAllocator()
    try:
        with pytest.raises(SystemError_) as err:
            await publish(
                [PortRequest(81, "tcp", "127.0.0.1", free, free), PortRequest(80, "tcp", "127.0.0.1", port, port)],
                "10.213.0.2", alloc, False,
            )
        assert str(err.value) == (
            f"failed to bind host port for 127.0.0.1:{port}:10.213.0.2:80/tcp: address already in use"
        )
        # the first, successful binding was rolled back
        assert alloc.in_use("127.0.0.1", "tcp") == set()
        probe = socket.socket()
        probe.bind(("127.0.0.1", free))
        probe.close()
    finally:
        taken.close()


async def test_ephemeral_binding_on_both_families() -> None:
    alloc = PortAllocator((45100, 45199))
    bindings = await publish([PortRequest(80, "tcp", "")], "10.213.0.2", alloc, True)
    try:
        assert [(b.host_ip, b.container_port) for b in bindings] == [("0.0.0.0", 80), ("::", 80)]
        assert bindings[0].host_port == bindings[1].host_port
        assert render_ports(["80/tcp"], bindings)["80/tcp"] == [
            {"HostIp": "0.0.0.0", "HostPort": str(bindings[0].host_port)},
            {"HostIp": "::", "HostPort": str(bindings[0].host_port)},
        ]
    finally:
        await close_all(bindings, alloc)
