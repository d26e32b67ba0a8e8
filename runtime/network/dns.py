"""The embedded DNS server that answers at 127.0.0.11 inside containers on user-defined
networks, as dockerd's resolver does.

Each container gets a UDP and a TCP socket bound to 127.0.0.11:53 *inside its own
network namespace* (created by a thread that entered the namespace,
:func:`make_sockets`); both are served from the daemon's event loop. Names known to
the container's networks (container names, ``--network-alias``, short IDs, hostnames,
``name.network``) are answered here with TTL 600; other names are forwarded to the
upstreams taken from the container's resolv.conf (the host's nameservers), unless the
container has no way out (internal networks only), in which case the answer is
SERVFAIL. Messages are parsed and built with dnspython, imported with the first query
(2 MB of the daemon's memory that a host without user-defined networks never needs).

Unlike dockerd we bind port 53 directly instead of a random port plus a DNAT rule in the
container's namespace: that saves two iptables runs per container start; the cost is
that a container process binding the wildcard address on port 53 gets EADDRINUSE.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

from runtime.network.etcfiles import INTERNAL_NS, ExtServer

log = logging.getLogger(__name__)

RESP_TTL = 600
EXT_IO_TIMEOUT = 4.0
MIN_UDP_SIZE = 512
PTR_V4_SUFFIX = ".in-addr.arpa."
PTR_V6_SUFFIX = ".ip6.arpa."


class DnsBackend(Protocol):
    """What the server asks the network service about one querying container."""

    def resolve_name(self, container_id: str, name: str) -> tuple[list[str], bool]:
        """(IPv4 addresses, known) for ``name`` (lower case, no trailing dot)."""
        ...

    def resolve_ip(self, container_id: str, ip: str) -> str | None:
        """``name.network`` for an address on one of the container's networks."""
        ...

    def upstreams(self, container_id: str) -> Sequence[ExtServer]: ...

    def proxy_dns(self, container_id: str) -> bool:
        """False when the container only has internal networks (no forwarding)."""
        ...


def make_sockets(address: str = INTERNAL_NS, port: int = 53) -> tuple[socket.socket, socket.socket]:
    """UDP and listening TCP sockets on ``address:port`` in the calling thread's network
    namespace (call it through ``run_in_netns``)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.setblocking(False)
        tcp.listen(64)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


@dataclass(slots=True)
class _Listener:
    transport: asyncio.DatagramTransport
    server: asyncio.Server


class EmbeddedDns:
    """All per-container listeners of this daemon."""

    def __init__(self, backend: DnsBackend, ext_timeout: float = EXT_IO_TIMEOUT, upstream_port: int = 53) -> None:
        self._backend = backend
        self._upstream_port = upstream_port
        self._listeners: dict[str, _Listener] = {}
        self._ext_timeout = ext_timeout

    async def serve(self, container_id: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Start answering on sockets made by :func:`make_sockets` (takes ownership)."""
        await self.stop(container_id)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self, container_id), sock=udp)

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_tcp(container_id, reader, writer)

        server = await asyncio.start_server(on_tcp, sock=tcp)
        self._listeners[container_id] = _Listener(transport, server)

    async def stop(self, container_id: str) -> None:
        listener = self._listeners.pop(container_id, None)
        if listener is None:
            return
        listener.transport.close()
        listener.server.close()

    async def close(self) -> None:
        for cid in list(self._listeners):
            await self.stop(cid)

    def serving(self, container_id: str) -> bool:
        return container_id in self._listeners

    # -- answering ----------------------------------------------------------------------

    async def answer(self, container_id: str, wire: bytes, tcp: bool) -> bytes | None:
        """The response to one query message (None: unparseable, drop it)."""
        _import_dnspython()
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return _rcode(query, dns.rcode.FORMERR)
        local = self._local_answer(container_id, query)
        if local is not None:
            max_size = 65535 if tcp else max(MIN_UDP_SIZE, query.payload if query.edns >= 0 else 0)
            try:
                return local.to_wire(max_size=max_size)
            except dns.exception.TooBig:
                local.flags |= dns.flags.TC
                local.answer.clear()
                return local.to_wire()
        forwarded = await self._forward(container_id, wire, tcp)
        return forwarded if forwarded is not None else _rcode(query, dns.rcode.SERVFAIL)

    def _local_answer(self, container_id: str, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        qname = question.name.to_text().lower()
        name = qname.rstrip(".")
        qtype = question.rdtype
        if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX):
            addrs, known = self._backend.resolve_name(container_id, name)
            if not known:
                return None
            resp = _reply(query)
            wanted = [a for a in addrs if (":" in a) == (qtype == dns.rdatatype.AAAA)]
            if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and wanted:
                wanted = random.sample(wanted, len(wanted))
                resp.answer.append(
                    dns.rrset.from_text_list(question.name, RESP_TTL, dns.rdataclass.IN, qtype, wanted)
                )
            return resp
        if qtype == dns.rdatatype.PTR and qname.endswith((PTR_V4_SUFFIX, PTR_V6_SUFFIX)):
            address = _ptr_address(qname)
            if address is None:
                return None
            host = self._backend.resolve_ip(container_id, address)
            if host is None:
                return None
            resp = _reply(query)
            resp.answer.append(
                dns.rrset.from_text(question.name, RESP_TTL, dns.rdataclass.IN, dns.rdatatype.PTR, host + ".")
            )
            return resp
        return None

    async def _forward(self, container_id: str, wire: bytes, tcp: bool) -> bytes | None:
        if not self._backend.proxy_dns(container_id):
            return None
        for server in self._backend.upstreams(container_id):
            try:
                if tcp:
                    raw = await asyncio.wait_for(_exchange_tcp(server.address, self._upstream_port, wire), self._ext_timeout)
                else:
                    raw = await asyncio.wait_for(_exchange_udp(server.address, self._upstream_port, wire), self._ext_timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                continue
            try:
                rcode = dns.message.from_wire(raw).rcode()
            except dns.exception.DNSException:
                continue
            if rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                continue
            return raw
        return None

    async def _serve_tcp(self, container_id: str, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
                resp = await self.answer(container_id, data, tcp=True)
                if resp is None:
                    break
                writer.write(struct.pack("!H", len(resp)) + resp)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _import_dnspython() -> None:
    """Bind the module's ``dns`` name to dnspython (every use of it is reached through
    :meth:`EmbeddedDns.answer`, which calls this first)."""
    global dns
    if "dns" in globals():
        return
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset  # noqa: F401


def _ptr_address(qname: str) -> str | None:
    """The address a reverse name asks about (``4.3.2.1.in-addr.arpa.``, or 32 nibbles
    of ``ip6.arpa.``), in the form the sandboxes record; None when malformed."""
    if qname.endswith(PTR_V4_SUFFIX):
        octets = qname[: -len(PTR_V4_SUFFIX)].split(".")
        return ".".join(reversed(octets)) if len(octets) == 4 else None
    nibbles = qname[: -len(PTR_V6_SUFFIX)].split(".")
    if len(nibbles) != 32 or any(len(n) != 1 for n in nibbles):
        return None
    try:
        return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    except ValueError:
        return None


def _reply(query: dns.message.Message) -> dns.message.Message:
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.RA
    return resp


def _rcode(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    resp = dns.message.make_response(query)
    resp.set_rcode(rcode)
    return resp.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: EmbeddedDns, container_id: str) -> None:
        self._server = server
        self._cid = container_id
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            resp = await self._server.answer(self._cid, data, tcp=False)
        except Exception:  # one bad query must not stop the listener
            log.exception("embedded DNS: query failed")
            return
        if resp is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(resp, addr)


class _OneShot(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _exchange_udp(server: str, port: int, wire: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    transport, proto = await loop.create_datagram_endpoint(_OneShot, remote_addr=(server, port), family=family)
    try:
        transport.sendto(wire)
        return await proto.reply
    finally:
        transport.close()


async def _exchange_tcp(server: str, port: int, wire: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server, port)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()


__all__ = ["RESP_TTL", "DnsBackend", "make_sockets", "EmbeddedDns"]
