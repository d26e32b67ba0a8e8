"""Published ports: host port allocation, the userland proxy, and ``NetworkSettings.Ports``.

As dockerd (userland-proxy on, its default): every published port is a socket the
daemon binds on the host (so a clash fails at start, with dockerd's message) and a
proxy that forwards what arrives on it to the container; traffic from other hosts
additionally takes the DNAT rules (:mod:`runtime.network.firewall`), while traffic to
127.0.0.1 can only be served by the proxy. A binding for an unspecified host address
becomes two, ``0.0.0.0`` and ``::`` (the latter proxied to the container's IPv4), when the
host can listen on IPv6. Ephemeral host ports come round-robin from the kernel's local
port range (32768-60999 by default), like dockerd's port allocator.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import InvalidParameter, SystemError_
from runtime.network.contract import PortBindingSpec
from runtime.ports import PROTOCOLS, parse_port_range, port_key, split_proto_port

log = logging.getLogger(__name__)

DEFAULT_RANGE = (32768, 60999)
MAX_ALLOCATE_ATTEMPTS = 10
UDP_IDLE_SECONDS = 90.0


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in path.read_text().split())
        return low, high
    except (OSError, ValueError):
        return DEFAULT_RANGE


def host_ipv6_listenable() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def parse_port_key(key: str) -> tuple[int, str]:
    """``"80/tcp"`` (or ``"80"``) -> (80, "tcp") (:func:`runtime.ports.port_key`), for a
    port that is to be bound: 1..65535, tcp, udp or sctp."""
    try:
        port, proto = port_key(key)
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {split_proto_port(key)[1]}") from None
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    if port == 0:
        raise InvalidParameter(f"invalid containerPort: {split_proto_port(key)[1]}")
    return port, proto


def _host_port_range(text: str) -> tuple[int, int]:
    if text == "":
        return 0, 0
    try:
        return parse_port_range(text)
    except ValueError:
        raise InvalidParameter(f"Error parsing HostPort value({text}):invalid hostPort: {text}") from None


@dataclass(frozen=True, slots=True)
class PortRequest:
    """One binding to set up: container ``port/proto`` on host ``host_ip:start-end``
    (0-0 = any ephemeral port)."""

    port: int
    proto: str
    host_ip: str
    host_port_start: int = 0
    host_port_end: int = 0


def exposed_keys(exposed: Iterable[str], bindings: Mapping[str, object]) -> list[str]:
    """Exposed ports (plus every bound one), normalised and sorted by protocol and number.
    An exposed port that is no port key (``70000/tcp``, ``80/bogus``) is left out: dockerd
    takes any ``ExposedPorts`` key at create and publishes nothing for it."""
    keys = {f"{p}/{proto}" for p, proto in (parse_port_key(k) for k in [*_port_keys(exposed), *bindings])}
    return sorted(keys, key=lambda k: (k.split("/")[1], int(k.split("/")[0])))


def _port_keys(exposed: Iterable[str]) -> list[str]:
    out = []
    for key in exposed:
        try:
            parse_port_key(key)
        except InvalidParameter:
            continue
        out.append(key)
    return out


def port_requests(
    exposed: Iterable[str],
    bindings: Mapping[str, Sequence[PortBindingSpec] | None],
    publish_all: bool,
) -> list[PortRequest]:
    """dockerd's expansion of ``PortBindings`` and ``-P`` into bindings to make."""
    normalized: dict[str, Sequence[PortBindingSpec]] = {}
    for key, specs in bindings.items():
        port, proto = parse_port_key(key)
        normalized[f"{port}/{proto}"] = list(normalized.get(f"{port}/{proto}", ())) + list(specs or ())
    requests: list[PortRequest] = []
    for key in exposed_keys(exposed, bindings):
        port, proto = parse_port_key(key)
        specs = normalized.get(key, ())
        for spec in specs:
            start, end = _host_port_range(spec.host_port)
            host_ip = spec.host_ip
            if host_ip:
                try:
                    host_ip = str(ipaddress.ip_address(host_ip.strip("[]")))
                except ValueError:
                    raise InvalidParameter(f"invalid host IP address: {spec.host_ip}") from None
            requests.append(PortRequest(port, proto, host_ip, start, end))
        if publish_all and not specs:
            requests.append(PortRequest(port, proto, ""))
    return requests


class PortAlreadyAllocated(SystemError_):
    def __init__(self, ip: str, port: int) -> None:
        super().__init__(f"Bind for {ip}:{port} failed: port is already allocated")


class PortAllocator:
    """Host ports handed out by this daemon, per (host IP, protocol)."""

    def __init__(self, port_range: tuple[int, int] | None = None) -> None:
        self.begin, self.end = port_range or ephemeral_range()
        self._used: dict[tuple[str, str], set[int]] = {}
        self._last: dict[tuple[str, str, int, int], int] = {}

    def request(self, ips: Sequence[str], proto: str, start: int, end: int) -> int:
        """Reserve one port for every address in ``ips`` (all get the same number)."""
        maps = [self._used.setdefault((ip, proto), set()) for ip in ips]
        if start and start == end:
            for ip, used in zip(ips, maps):
                if start in used:
                    raise PortAlreadyAllocated(ip, start)
            for used in maps:
                used.add(start)
            return start
        begin, stop = (start, end) if start else (self.begin, self.end)
        key = (ips[0], proto, begin, stop)
        port = self._last.get(key, stop)
        for _ in range(begin, stop + 1):
            port = begin if port >= stop else port + 1
            if not any(port in used for used in maps):
                for used in maps:
                    used.add(port)
                self._last[key] = port
                return port
        raise SystemError_("all ports are allocated")

    def release(self, ip: str, proto: str, port: int) -> None:
        self._used.get((ip, proto), set()).discard(port)

    def in_use(self, ip: str, proto: str) -> set[int]:
        return set(self._used.get((ip, proto), ()))


@dataclass(slots=True)
class Binding:
    """A live published port."""

    proto: str
    host_ip: str  # "0.0.0.0", "::", "127.0.0.1"...
    host_port: int
    container_ip: str
    container_port: int
    _sock: socket.socket | None = None
    _closers: list[asyncio.AbstractServer | asyncio.BaseTransport] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def describe(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host}:{self.host_port}:{self.container_ip}:{self.container_port}/{self.proto}"

    async def close(self) -> None:
        for closer in self._closers:
            closer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._sock is not None:
            self._sock.close()
        self._closers.clear()


def bind_host_socket(host_ip: str, port: int, proto: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host_ip, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def publish(
    requests: Sequence[PortRequest],
    container_ip: str,
    allocator: PortAllocator,
    ipv6_host: bool,
) -> list[Binding]:
    """Allocate, bind and start proxying every request; all or nothing."""
    done: list[Binding] = []
    try:
        for req in requests:
            if req.proto == "sctp":
                raise SystemError_("sctp port publishing is not supported")
            ips = [req.host_ip] if req.host_ip else (["0.0.0.0", "::"] if ipv6_host else ["0.0.0.0"])
            done.extend(await _publish_one(req, ips, container_ip, allocator))
    except BaseException:
        for b in done:
            allocator.release(b.host_ip, b.proto, b.host_port)
            await b.close()
        raise
    return done


async def _publish_one(req: PortRequest, ips: list[str], container_ip: str,
                       allocator: PortAllocator) -> list[Binding]:
    explicit = req.host_port_start and req.host_port_start == req.host_port_end
    last_error: Exception | None = None
    for _ in range(1 if explicit else MAX_ALLOCATE_ATTEMPTS):
        port = allocator.request(ips, req.proto, req.host_port_start, req.host_port_end)
        bindings: list[Binding] = []
        try:
            for ip in ips:
                b = Binding(req.proto, ip, port, container_ip, req.port)
                try:
                    b._sock = bind_host_socket(ip, port, req.proto)
                except OSError as exc:
                    text = exc.strerror.lower() if exc.strerror else str(exc)
                    raise SystemError_(f"failed to bind host port for {b.describe()}: {text}") from exc
                bindings.append(b)
            for b in bindings:
                await _start_proxy(b)
            return bindings
        except SystemError_ as exc:
            last_error = exc
            for b in bindings:
                await b.close()
            for ip in ips:
                allocator.release(ip, req.proto, port)
    assert last_error is not None
    raise last_error


async def _start_proxy(b: Binding) -> None:
    assert b._sock is not None
    sock, b._sock = b._sock, None
    loop = asyncio.get_running_loop()
    if b.proto == "tcp":
        sock.listen(128)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                b._tasks.add(task)
            try:
                await _proxy_tcp(reader, writer, b.container_ip, b.container_port)
            finally:
                if task is not None:
                    b._tasks.discard(task)

        b._closers.append(await asyncio.start_server(handle, sock=sock))
    else:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpFrontend(b.container_ip, b.container_port), sock=sock
        )
        b._closers.append(transport)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _proxy_tcp(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                     host: str, port: int) -> None:
    try:
        backend_r, backend_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pump(client_r, backend_w), _pump(backend_r, client_w))
    finally:
        backend_w.close()
        client_w.close()


class _UdpBackend(asyncio.DatagramProtocol):
    def __init__(self, front: _UdpFrontend, client: tuple[str, int]) -> None:
        self.front = front
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.front.reply(self.client, data)


class _UdpFrontend(asyncio.DatagramProtocol):
    """One host UDP socket; a connected socket to the container per client address."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], tuple[asyncio.DatagramTransport, asyncio.TimerHandle]] = {}
        self.pending: dict[tuple[str, int], list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        for flow, timer in self.flows.values():
            timer.cancel()
            flow.close()
        self.flows.clear()

    def reply(self, client: tuple[str, int], data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        client = (addr[0], addr[1])
        loop = asyncio.get_running_loop()
        if client in self.flows:
            flow, timer = self.flows[client]
            timer.cancel()
            self.flows[client] = (flow, loop.call_later(UDP_IDLE_SECONDS, self._expire, client))
            flow.sendto(data)
            return
        if client in self.pending:
            self.pending[client].append(data)
            return
        self.pending[client] = [data]
        loop.create_task(self._open(client))

    async def _open(self, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            flow, _ = await loop.create_datagram_endpoint(lambda: _UdpBackend(self, client), remote_addr=self.target)
        except OSError:
            self.pending.pop(client, None)
            return
        if self.transport is None or self.transport.is_closing():
            flow.close()
            return
        self.flows[client] = (flow, loop.call_later(UDP_IDLE_SECONDS, self._expire, client))
        for data in self.pending.pop(client, []):
            flow.sendto(data)

    def _expire(self, client: tuple[str, int]) -> None:
        entry = self.flows.pop(client, None)
        if entry is not None:
            entry[0].close()


def render_ports(keys: Iterable[str], bindings: Iterable[Binding]) -> dict[str, list[dict[str, str]] | None]:
    """``NetworkSettings.Ports``: every exposed port, null when not published."""
    result: dict[str, list[dict[str, str]] | None] = {key: None for key in keys}
    for b in bindings:
        key = f"{b.container_port}/{b.proto}"
        entry = result.get(key) or []
        entry.append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        result[key] = entry
    return result


async def close_all(bindings: Iterable[Binding], allocator: PortAllocator) -> None:
    for b in bindings:
        allocator.release(b.host_ip, b.proto, b.host_port)
        with contextlib.suppress(Exception):
            await b.close()


__all__ = [
    "ephemeral_range", "host_ipv6_listenable", "parse_port_key", "PortRequest", "exposed_keys",
    "port_requests", "PortAlreadyAllocated", "PortAllocator", "Binding", "bind_host_socket",
    "publish", "render_ports", "close_all",
]
