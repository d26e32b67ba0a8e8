"""The dashboard's only way to the engine: HTTP over the engine's socket (Engine API).

``EngineClient`` wraps one aiohttp ``ClientSession`` (``UnixConnector`` for ``unix://``, plain
TCP for ``tcp://``). ``hijack`` opens a raw connection for the endpoints that upgrade the HTTP
connection to a bidirectional byte stream (exec start with a TTY), which aiohttp's client does
not expose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode, urlsplit

import aiohttp

JSONValue = object  # parsed JSON, narrowed by the caller where it matters
Params = Mapping[str, str]


class EngineError(Exception):
    """The engine answered with an error status; ``message`` is the engine's own text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class EngineAddress:
    """Where the engine listens: a unix socket path, or a TCP host and port."""

    unix_path: str | None
    tcp_host: str | None = None
    tcp_port: int = 2375

    @classmethod
    def parse(cls, host: str) -> EngineAddress:
        """``unix:///path`` or ``tcp://host:port`` (as ``DOCKER_HOST``); ValueError otherwise."""
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            if not path:
                raise ValueError(f"no socket path in {host!r}")
            return cls(unix_path=path)
        if host.startswith("tcp://"):
            parts = urlsplit(host)
            if not parts.hostname:
                raise ValueError(f"no host in {host!r}")
            return cls(unix_path=None, tcp_host=parts.hostname, tcp_port=parts.port or 2375)
        raise ValueError(f"unsupported engine address {host!r} (want unix:///path or tcp://host:port)")


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    body = await resp.read()
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip() or resp.reason or str(resp.status)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return cast(str, data["message"])
    return body.decode(errors="replace").strip()


class EngineClient:
    """A client of one engine; create it inside the event loop, ``close()`` it at the end."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.address = EngineAddress.parse(host)
        connector: aiohttp.BaseConnector
        if self.address.unix_path is not None:
            connector = aiohttp.UnixConnector(path=self.address.unix_path)
            self._base = "http://docker"
        else:
            connector = aiohttp.TCPConnector()
            self._base = f"http://{self.address.tcp_host}:{self.address.tcp_port}"
        # no overall timeout: streams (logs, events, stats) stay open as long as the browser looks
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )

    async def close(self) -> None:
        await self._session.close()

    def url(self, path: str) -> str:
        return self._base + path

    async def json(self, method: str, path: str, params: Params | None = None,
                   body: JSONValue | None = None) -> JSONValue:
        """One request whose answer is JSON (or empty); EngineError on a status >= 400."""
        kwargs: dict[str, object] = {}
        if body is not None:
            kwargs["json"] = body
        async with self._session.request(method, self.url(path), params=params or {}, **kwargs) as resp:  # type: ignore[arg-type]
            if resp.status >= 400:
                raise EngineError(resp.status, await _error_text(resp))
            data = await resp.read()
            if not data.strip():
                return None
            try:
                return cast(JSONValue, json.loads(data))
            except ValueError:
                return data.decode(errors="replace")

    @asynccontextmanager
    async def stream(self, method: str, path: str, params: Params | None = None,
                     data: bytes | aiohttp.StreamReader | None = None,
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request whose body is read by the caller as it arrives; EngineError on >= 400."""
        async with self._session.request(method, self.url(path), params=params or {},
                                         data=data, headers=dict(headers or {})) as resp:
            if resp.status >= 400:
                raise EngineError(resp.status, await _error_text(resp))
            yield resp

    async def hijack(self, path: str, body: JSONValue,
                     params: Params | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """POST ``body`` to ``path`` asking for a connection upgrade, and return the raw stream
        once the engine has answered 101 (or 200, which older engines send)."""
        if self.address.unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(self.address.unix_path)
        else:
            assert self.address.tcp_host is not None
            reader, writer = await asyncio.open_connection(self.address.tcp_host, self.address.tcp_port)
        payload = json.dumps(body).encode()
        target = path + ("?" + urlencode(dict(params)) if params else "")
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status not in (101, 200):
            rest = b""
            try:
                rest = await asyncio.wait_for(reader.read(65536), 5)
            except (asyncio.TimeoutError, OSError):
                pass
            writer.close()
            text = rest.decode(errors="replace")
            try:
                text = str(json.loads(text.split("\r\n\r\n")[-1] if "\r\n" in text else text)["message"])
            except (ValueError, KeyError, TypeError):
                pass
            raise EngineError(status or 502, text.strip() or status_line)
        return reader, writer


async def demux(resp: aiohttp.ClientResponse, tty: bool) -> AsyncIterator[tuple[str, bytes]]:
    """The chunks of a logs/attach body as (``stdout``|``stderr``, bytes): raw with a TTY,
    else the engine's 8-byte-header multiplexed frames."""
    if tty:
        async for chunk in resp.content.iter_any():
            yield "stdout", chunk
        return
    while True:
        try:
            header = await resp.content.readexactly(8)
        except asyncio.IncompleteReadError:
            return
        size = int.from_bytes(header[4:8], "big")
        data = await resp.content.readexactly(size) if size else b""
        yield ("stderr" if header[0] == 2 else "stdout"), data
