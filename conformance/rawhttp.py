"""Raw HTTP access to an engine, for checks the clients hide: status codes, headers, exact bodies.

Only the standard library is used, so what we see is what the engine sent (docker-py and the CLI
both rewrite errors). Hosts are Docker host URLs: ``unix:///path`` or ``tcp://host:port``.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix stream socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


def open_connection(host: str, timeout: float = 30.0) -> http.client.HTTPConnection:
    """A fresh HTTP connection to the engine at ``host`` (a DOCKER_HOST-style URL)."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        return UnixHTTPConnection(parts.path, timeout)
    if parts.scheme in ("tcp", "http"):
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 2375, timeout=timeout)
    raise ValueError(f"unsupported docker host {host!r} (want unix:// or tcp://)")


def connect_socket(host: str, timeout: float = 30.0) -> socket.socket:
    """A connected stream socket to the engine, for tests that speak HTTP by hand."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(parts.path)
        return sock
    if parts.scheme in ("tcp", "http"):
        return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 2375), timeout=timeout)
    raise ValueError(f"unsupported docker host {host!r} (want unix:// or tcp://)")


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One complete HTTP response as the engine sent it."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)

    def error_message(self) -> str:
        """The error text: ``message`` of a JSON body, or the plain-text body.

        dockerd answers in plain text when the requested API version is below 1.24
        (e.g. the "too old" error for /v1.23/...), JSON otherwise.
        """
        ctype = self.header("Content-Type") or ""
        if ctype.startswith("application/json"):
            message = self.json()["message"]
            assert isinstance(message, str)
            return message
        return self.body.decode().strip()

    def describe(self) -> str:
        """A short rendering for assertion messages."""
        head = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
        return f"HTTP {self.status} {self.reason}\n{head}\n{self.body[:2000]!r}"


class RawHTTP:
    """Sends single requests to the engine and returns the whole response."""

    def __init__(self, host: str, timeout: float = 30.0) -> None:
        self.host = host
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> RawResponse:
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = open_connection(self.host, self.timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return RawResponse(resp.status, resp.reason, resp.headers, data)
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        return self.request("GET", path, headers=headers)

    def head(self, path: str) -> RawResponse:
        return self.request("HEAD", path)

    def post(self, path: str, json_body: Any = None, body: bytes | str | None = None) -> RawResponse:
        return self.request("POST", path, body=body, json_body=json_body)

    def delete(self, path: str) -> RawResponse:
        return self.request("DELETE", path)
