"""The sync channel between the supervisor and a starting child (youki's ``Message``).

A ``SOCK_SEQPACKET`` socketpair, close-on-exec on both ends, one JSON object per packet.
Child -> supervisor: ``Created`` (namespaces and mounts exist; waits for ``Resume``),
``PtyMaster`` (carries the pty master fd, SCM_RIGHTS), ``ExecFailed(step, text)``.
Supervisor -> child: ``Resume``. End of file without ``ExecFailed`` means execve succeeded.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Protocol

MAX_PACKET = 65536


@dataclass(frozen=True, slots=True)
class Created:
    pass


@dataclass(frozen=True, slots=True)
class PtyMaster:
    fd: int


@dataclass(frozen=True, slots=True)
class ExecFailed:
    step: str
    text: str


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class Eof:
    pass


Message = Created | PtyMaster | ExecFailed | Resume | Eof


class Channel(Protocol):
    """The child's end, as the init steps see it (a fake in unit tests)."""

    def send(self, msg: Created | PtyMaster | ExecFailed) -> None: ...
    def wait_resume(self) -> None: ...
    def fileno(self) -> int: ...


def socketpair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, child end); both close-on-exec."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)


def encode(msg: Message) -> bytes:
    if isinstance(msg, ExecFailed):
        return json.dumps({"type": "exec_failed", "step": msg.step, "text": msg.text}).encode()
    if isinstance(msg, Created):
        return b'{"type":"created"}'
    if isinstance(msg, PtyMaster):
        return b'{"type":"pty"}'
    if isinstance(msg, Resume):
        return b'{"type":"resume"}'
    raise ValueError(f"cannot encode {msg!r}")


def send(sock: socket.socket, msg: Message) -> None:
    if isinstance(msg, PtyMaster):
        socket.send_fds(sock, [encode(msg)], [msg.fd])
    else:
        sock.send(encode(msg))


def recv(sock: socket.socket) -> Message:
    """One message from the peer; ``Eof`` when the peer closed (or exec'd)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_PACKET, 4)
    if not data:
        for fd in fds:
            _close(fd)
        return Eof()
    obj = json.loads(data)
    kind = obj.get("type")
    if kind == "pty" and fds:
        for extra in fds[1:]:
            _close(extra)
        return PtyMaster(fds[0])
    for fd in fds:
        _close(fd)
    if kind == "exec_failed":
        return ExecFailed(str(obj.get("step", "")), str(obj.get("text", "")))
    if kind == "created":
        return Created()
    if kind == "resume":
        return Resume()
    raise ValueError(f"unexpected sync message {obj!r}")


def _close(fd: int) -> None:
    os.close(fd)


class SocketChannel:
    """The child's end of a real sync socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, msg: Created | PtyMaster | ExecFailed) -> None:
        send(self._sock, msg)

    def wait_resume(self) -> None:
        msg = recv(self._sock)
        if not isinstance(msg, Resume):
            raise OSError("supervisor went away before resume")

    def fileno(self) -> int:
        return self._sock.fileno()


__all__ = ["Created", "PtyMaster", "ExecFailed", "Resume", "Eof", "Message", "Channel",
           "SocketChannel", "socketpair", "send", "recv", "encode"]
