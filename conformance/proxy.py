"""A recording unix-socket proxy in front of the engine: which requests did a client send?

Used to check version negotiation from the outside (the CLI's ``HEAD /_ping`` then
``GET /v1.NN/version``). It parses request heads only as far as needed to find request lines;
after a body it cannot frame (chunked, or an upgraded connection) it just forwards bytes.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from types import TracebackType

from conformance.rawhttp import connect_socket

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")
_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


class RecordingProxy:
    """``with RecordingProxy(engine_host, path) as proxy:`` point a client at ``proxy.host``."""

    def __init__(self, upstream: str, socket_path: Path) -> None:
        self.upstream = upstream
        self.socket_path = socket_path
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def __enter__(self) -> RecordingProxy:
        self._listener.bind(str(self.socket_path))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()
        self.socket_path.unlink(missing_ok=True)

    def request_lines(self) -> list[str]:
        with self._lock:
            return [f"{method} {target}" for method, target in self.requests]

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = connect_socket(self.upstream)
            self._spawn(self._pump_requests, client, upstream)
            self._spawn(self._pump_raw, upstream, client)

    def _pump_raw(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.5)
        try:
            while not self._closed.is_set():
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _pump_requests(self, client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(0.5)
        buf = b""
        framing = True
        try:
            while not self._closed.is_set():
                try:
                    data = client.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                upstream.sendall(data)
                if framing:
                    buf += data
                    buf, framing = self._consume(buf)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _consume(self, buf: bytes) -> tuple[bytes, bool]:
        """Record complete request heads in ``buf``; return the rest and whether framing is still known."""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return buf, True
            head, rest = buf[:end], buf[end + 4 :]
            first = head.split(b"\r\n", 1)[0]
            match = _REQUEST_LINE.match(first)
            if match is None:
                return b"", False
            with self._lock:
                self.requests.append((match.group(1).decode(), match.group(2).decode()))
            lowered = head.lower()
            if b"transfer-encoding: chunked" in lowered or b"upgrade:" in lowered:
                return b"", False
            length = _CONTENT_LENGTH.search(head)
            size = int(length.group(1)) if length else 0
            if len(rest) < size:
                # Body still arriving: stop framing rather than buffer bodies we never inspect.
                return b"", False
            buf = rest[size:]
