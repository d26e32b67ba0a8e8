"""The supervisor's control socket: accept daemon connections, read requests, queue replies.

``<exec-root>/supervisor.sock`` is ``SOCK_SEQPACKET``, so every packet is exactly one
UTF-8 JSON message and fds sent with SCM_RIGHTS arrive with the message that names them
(the protocol is documented in :mod:`runtime.process.supervisor`). Peers must be uid 0.
Writes never block the single-threaded supervisor: a reply that does not fit is queued on
its :class:`Conn` and flushed when the socket is writable again.

Loaded by the supervisor only (no daemon modules): it must stay small.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOCKET_NAME = "supervisor.sock"
MAX_MESSAGE = 1 << 20


@dataclass
class Conn:
    """One daemon connection and the messages (with their fds) still to send on it."""

    sock: socket.socket
    out: collections.deque[tuple[bytes, list[int]]] = field(default_factory=collections.deque)
    writing: bool = False


class ControlServer:
    """The listening socket and its connections, driven by the supervisor's selector.

    ``on_message(conn, msg)`` handles one decoded request (an exception it raises is sent
    back as a failed reply to that request); ``on_connect(conn)`` runs for each accepted
    connection (the supervisor re-sends unacknowledged exits there)."""

    def __init__(self, sel: selectors.BaseSelector,
                 on_message: Callable[[Conn, dict[str, Any]], None],
                 on_connect: Callable[[Conn], None]) -> None:
        self.sel = sel
        self.conns: dict[int, Conn] = {}
        self._on_message = on_message
        self._on_connect = on_connect

    def listen(self, path: Path) -> None:
        """Bind ``path`` (replacing a stale socket file), mode 0600, and start accepting."""
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self.listener.bind(str(path))
        os.chmod(path, 0o600)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)

    def _accept(self, _events: int) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], sys.byteorder)
        if uid != 0:
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
        conn = Conn(sock)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, lambda ev: self._on_conn(conn, ev))
        self._on_connect(conn)

    def _close_conn(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd in self.conns:
            del self.conns[fd]
            self.sel.unregister(conn.sock)
        for _data, fds in conn.out:
            for f in fds:
                os.close(f)
        conn.out.clear()
        conn.sock.close()

    def _on_conn(self, conn: Conn, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(conn)
        if not events & selectors.EVENT_READ:
            return
        while conn.sock.fileno() >= 0:
            try:
                data = conn.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_conn(conn)
                return
            msg: Any = None
            try:
                msg = json.loads(data)
                self._on_message(conn, msg)
            except Exception as exc:  # a bad request must not kill the supervisor
                req = msg.get("req") if isinstance(msg, dict) else None
                self.send(conn, {"req": req, "ok": False, "step": "request",
                                 "text": f"{type(exc).__name__}: {exc}"})

    def send(self, conn: Conn, obj: dict[str, Any], fds: list[int] | None = None) -> None:
        """Queue ``obj``; ``fds`` become owned by the queue and are closed once sent."""
        conn.out.append((json.dumps(obj).encode(), fds or []))
        self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        while conn.out:
            data, fds = conn.out[0]
            try:
                if fds:
                    socket.send_fds(conn.sock, [data], fds)
                else:
                    conn.sock.send(data)
            except BlockingIOError:
                if not conn.writing:
                    conn.writing = True
                    self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                    lambda ev: self._on_conn(conn, ev))
                return
            except OSError:
                self._close_conn(conn)
                return
            conn.out.popleft()
            for f in fds:
                os.close(f)
        if conn.writing:
            conn.writing = False
            self.sel.modify(conn.sock, selectors.EVENT_READ, lambda ev: self._on_conn(conn, ev))


__all__ = ["SOCKET_NAME", "MAX_MESSAGE", "Conn", "ControlServer"]
