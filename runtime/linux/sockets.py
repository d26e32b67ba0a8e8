"""Socket queries the kernel answers and Python's socket module does not."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from typing import Protocol


class SocketLike(Protocol):
    """A socket, or asyncio's ``TransportSocket`` view of one."""

    @property
    def family(self) -> int: ...

    def fileno(self) -> int: ...


def unread_by_peer(sock: SocketLike) -> int | None:
    """How much of what this end wrote the peer has not read yet, for a unix stream socket
    (``SIOCOUTQ``: the queued buffers stay charged to the sender until the reader takes
    them); 0 once the peer has read everything. None where the kernel cannot tell (TCP
    counts unacknowledged bytes, not unread ones) or the socket is gone."""
    try:
        if sock.family != socket.AF_UNIX:
            return None
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except (OSError, ValueError):
        return None
    return int(struct.unpack("i", raw)[0])


__all__ = ["SocketLike", "unread_by_peer"]
