from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename

from runtime.network.dns import RESP_TTL, EmbeddedDns, make_sockets
from runtime.network.etcfiles import ExtServer
from runtime.network.netns import run_in_netns


class FakeBackend:
    def __init__(self, upstreams: Sequence[ExtServer] = (), proxy: bool = True) -> None:
        self.names = {"web": ["10.213.5.2"], "api": ["10.213.5.3", "10.213.5.4"], "web.n1": ["10.213.5.2"]}
        self._upstreams = list(upstreams)
        self.proxy = proxy
        self.asked: list[tuple[str, str]] = []

    def resolve_name(self, container_id: str, name: str) -> tuple[list[str], bool]:
        self.asked.append((container_id, name))
        return (list(self.names[name]), True) if name in self.names else ([], False)

    def resolve_ip(self, container_id: str, ip: str) -> str | None:
        return "web.n1" if ip in ("10.213.5.2", "fd42::9") else None

    def upstreams(self, container_id: str) -> Sequence[ExtServer]:
        return self._upstreams

    def proxy_dns(self, container_id: str) -> bool:
        return self.proxy


def q(name: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


async def test_answers_known_names_case_insensitively() -> None:
    server = EmbeddedDns(FakeBackend())
    resp = dns.message.from_wire(await server.answer("c1", q("WEB."), tcp=False))  # type: ignore[arg-type]
    assert resp.rcode() == dns.rcode.NOERROR
    (rrset,) = resp.answer
    assert rrset.ttl == RESP_TTL and [r.to_text() for r in rrset] == ["10.213.5.2"]
    resp = dns.message.from_wire(await server.answer("c1", q("api"), tcp=False))  # type: ignore[arg-type]
    assert sorted(r.to_text() for r in resp.answer[0]) == ["10.213.5.3", "10.213.5.4"]
    resp = dns.message.from_wire(await server.answer("c1", q("web.n1"), tcp=False))  # type: ignore[arg-type]
    assert resp.answer[0][0].to_text() == "10.213.5.2"


async def test_aaaa_for_a_known_v4_name_is_empty_noerror() -> None:
    resp = dns.message.from_wire(await EmbeddedDns(FakeBackend()).answer("c1", q("web", "AAAA"), tcp=False))  # type: ignore[arg-type]
    assert resp.rcode() == dns.rcode.NOERROR and resp.answer == []


async def test_aaaa_and_a_split_a_dual_stack_name() -> None:
    backend = FakeBackend()
    backend.names["v6"] = ["10.213.5.9", "fd42::9"]
    server = EmbeddedDns(backend)
    resp = dns.message.from_wire(await server.answer("c1", q("v6", "AAAA"), tcp=False))  # type: ignore[arg-type]
    assert resp.answer[0].rdtype == dns.rdatatype.AAAA and [r.to_text() for r in resp.answer[0]] == ["fd42::9"]
    resp = dns.message.from_wire(await server.answer("c1", q("v6", "A"), tcp=False))  # type: ignore[arg-type]
    assert [r.to_text() for r in resp.answer[0]] == ["10.213.5.9"]


async def test_ptr_ipv6() -> None:
    name = dns.reversename.from_address("fd42::9").to_text()
    resp = dns.message.from_wire(await EmbeddedDns(FakeBackend()).answer("c1", q(name, "PTR"), tcp=False))  # type: ignore[arg-type]
    assert [r.to_text() for r in resp.answer[0]] == ["web.n1."]
    bad = dns.message.from_wire(await EmbeddedDns(FakeBackend(proxy=False)).answer("c1", q("f.ip6.arpa", "PTR"), tcp=False))  # type: ignore[arg-type]
    assert bad.answer == []


async def test_ptr() -> None:
    resp = dns.message.from_wire(
        await EmbeddedDns(FakeBackend()).answer("c1", q("2.5.213.10.in-addr.arpa", "PTR"), tcp=False)  # type: ignore[arg-type]
    )
    assert resp.answer[0][0].to_text() == "web.n1."


async def test_unknown_name_without_upstreams_or_proxy_is_servfail() -> None:
    server = EmbeddedDns(FakeBackend([ExtServer("127.0.0.1", True)], proxy=False))
    resp = dns.message.from_wire(await server.answer("c1", q("example.org"), tcp=False))  # type: ignore[arg-type]
    assert resp.rcode() == dns.rcode.SERVFAIL


async def test_unknown_names_are_forwarded_to_the_first_working_upstream() -> None:
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.append(data)
            query = dns.message.from_wire(data)
            resp = dns.message.make_response(query)
            resp.answer.append(dns.rrset.from_text(query.question[0].name, 30, "IN", "A", "192.0.2.99"))
            self.t.sendto(resp.to_wire(), addr)  # type: ignore[attr-defined]

    transport, _ = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        # the first upstream does not answer at all and is skipped after the timeout
        server = EmbeddedDns(FakeBackend([ExtServer("127.0.0.2", True), ExtServer("127.0.0.1", True)]),
                             ext_timeout=0.3, upstream_port=port)
        raw = await server.answer("c1", q("example.org"), tcp=False)
        resp = dns.message.from_wire(raw)  # type: ignore[arg-type]
        assert resp.answer[0][0].to_text() == "192.0.2.99"
        assert len(received) == 1
    finally:
        transport.close()


def _ask_in_ns(name: str, rdtype: str, tcp: bool) -> dns.message.Message:
    import dns.query

    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.11", timeout=3)
    return dns.query.udp(query, "127.0.0.11", timeout=3)


async def test_serves_inside_a_namespace_over_udp_and_tcp(netns_pid: int) -> None:
    ns = f"/proc/{netns_pid}/ns/net"
    backend = FakeBackend()
    server = EmbeddedDns(backend)

    def setup() -> tuple[socket.socket, socket.socket]:
        from runtime.network.bridge import _iproute

        with _iproute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return make_sockets()

    udp, tcp = await run_in_netns(ns, setup)
    await server.serve("cid1", udp, tcp)
    try:
        assert server.serving("cid1")
        resp = await run_in_netns(ns, lambda: _ask_in_ns("web", "A", tcp=False))
        assert resp.answer[0][0].to_text() == "10.213.5.2"
        resp = await run_in_netns(ns, lambda: _ask_in_ns("api", "A", tcp=True))
        assert len(resp.answer[0]) == 2
        assert backend.asked[0] == ("cid1", "web")
    finally:
        await server.stop("cid1")
    assert not server.serving("cid1")
    # the port is free again inside the namespace once the listener stopped
    udp2, tcp2 = await run_in_netns(ns, make_sockets)
    udp2.close()
    tcp2.close()
