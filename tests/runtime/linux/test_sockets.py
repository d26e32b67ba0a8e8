from __future__ import annotations

import asyncio
import socket

from runtime.linux.sockets import unread_by_peer


def test_unread_by_peer_counts_until_the_peer_reads() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert unread_by_peer(a) == 0
        a.sendall(b"x" * 100)
        pending = unread_by_peer(a)
        assert pending is not None and pending > 0
        assert b.recv(1000) == b"x" * 100
        assert unread_by_peer(a) == 0


async def test_works_on_asyncio_transport_sockets() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    _, writer = await asyncio.open_connection(sock=a)
    view = writer.transport.get_extra_info("socket")
    writer.write(b"head")
    await writer.drain()
    assert (unread_by_peer(view) or 0) > 0
    b.recv(100)
    assert unread_by_peer(view) == 0
    writer.close()
    b.close()


def test_unknown_for_tcp_and_closed_sockets() -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    assert unread_by_peer(tcp) is None
    tcp.close()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.close()
    b.close()
    assert unread_by_peer(a) is None
