"""The few rtnetlink requests the bridge driver makes, over a plain ``AF_NETLINK`` socket.

This replaced pyroute2: ``import pyroute2`` loads about 190 modules (NDB with sqlite3,
IPDB, conntrack, nftables, wireguard, nl80211, ...) and cost the daemon 10 MB of its
resident memory, for the dozen requests below. The surface is pyroute2's where
``runtime.network.bridge`` uses it (``link_lookup``, ``get_links``, ``get_addr``,
``link``, ``addr``, ``route``; messages answer ``msg["flags"]`` and
``msg.get_attr("IFLA_IFNAME")``; failures raise :class:`NetlinkError` with the errno as
``code`` and ``args[0]`` and its text as ``args[1]``), so the bridge code did not change.

Each :class:`IPRoute` is one socket of the calling thread's network namespace, used by
one thread; requests are synchronous and wait for the kernel's acknowledgement.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from runtime.linux.syscalls import LinuxSyscalls

__all__ = ["IPRoute", "NetlinkError", "setns"]

# netlink (linux/netlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
_NLA_TYPE_MASK = 0x3FFF
_HDR = struct.Struct("=IHHII")     # nlmsghdr: len, type, flags, seq, pid
_NLA = struct.Struct("=HH")        # nlattr: len, type

# rtnetlink (linux/rtnetlink.h, if_link.h, if_addr.h, veth.h)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE = 24
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")   # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
IFF_UP = 0x1
RT_TABLE_MAIN, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 0, 1

_LINK_ATTRS = {1: "IFLA_ADDRESS", 3: "IFLA_IFNAME", 4: "IFLA_MTU", 10: "IFLA_MASTER",
               18: "IFLA_LINKINFO"}
_LINKINFO_ATTRS = {1: "IFLA_INFO_KIND"}
_ADDR_ATTRS = {1: "IFA_ADDRESS", 2: "IFA_LOCAL", 3: "IFA_LABEL", 4: "IFA_BROADCAST"}
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5


class NetlinkError(OSError):
    """The kernel refused a request: ``code`` is the errno."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code, message or os.strerror(code))
        self.code = code


def setns(fd: int, flags: int = 0) -> None:
    """setns(2) for the calling thread."""
    _SYSCALLS.setns(fd, flags)


_SYSCALLS = LinuxSyscalls()


class Message:
    """One decoded message: header fields by name, attributes by their kernel name."""

    __slots__ = ("fields", "attrs")

    def __init__(self, fields: dict[str, int], attrs: list[tuple[str, Any]]) -> None:
        self.fields = fields
        self.attrs = attrs

    def __getitem__(self, key: str) -> int:
        return self.fields[key]

    def get_attr(self, name: str) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        return None


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _str(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _mac(kind: int, value: str) -> bytes:
    return _attr(kind, bytes.fromhex(value.replace(":", "")))


def _ip(kind: int, address: str) -> bytes:
    return _attr(kind, ipaddress.ip_address(address).packed)


def _attrs(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    offset = 0
    while offset + _NLA.size <= len(view):
        length, kind = _NLA.unpack_from(view, offset)
        if length < _NLA.size:
            return
        yield kind & _NLA_TYPE_MASK, view[offset + _NLA.size:offset + length]
        offset += (length + 3) & ~3


def _text(payload: memoryview) -> str:
    return bytes(payload).split(b"\0", 1)[0].decode(errors="replace")


def _decode_link(body: memoryview) -> Message:
    family, kind, index, flags, change = _IFINFO.unpack_from(body)
    attrs: list[tuple[str, Any]] = []
    for key, payload in _attrs(body[_IFINFO.size:]):
        name = _LINK_ATTRS.get(key)
        if name is None:
            continue
        value: Any
        if name == "IFLA_IFNAME":
            value = _text(payload)
        elif name in ("IFLA_MTU", "IFLA_MASTER"):
            value = struct.unpack_from("=I", payload)[0]
        elif name == "IFLA_ADDRESS":
            value = ":".join(f"{b:02x}" for b in bytes(payload))
        else:  # IFLA_LINKINFO
            value = Message({}, [(_LINKINFO_ATTRS[k], _text(p)) for k, p in _attrs(payload)
                                 if k in _LINKINFO_ATTRS])
        attrs.append((name, value))
    return Message({"family": family, "ifi_type": kind, "index": index, "flags": flags,
                    "change": change}, attrs)


def _decode_addr(body: memoryview) -> Message:
    family, prefixlen, flags, scope, index = _IFADDR.unpack_from(body)
    attrs: list[tuple[str, Any]] = []
    for key, payload in _attrs(body[_IFADDR.size:]):
        name = _ADDR_ATTRS.get(key)
        if name is None:
            continue
        if name == "IFA_LABEL":
            attrs.append((name, _text(payload)))
        else:
            attrs.append((name, socket.inet_ntop(family, bytes(payload))))
    return Message({"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope,
                    "index": index}, attrs)


class IPRoute:
    """An rtnetlink socket of the calling thread's network namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> IPRoute:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------

    def _request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, memoryview]]:
        """Send one request; the (type, body) of every reply up to the ack or the dump's end."""
        self._seq += 1
        seq = self._seq
        self._sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body)
        replies: list[tuple[int, memoryview]] = []
        while True:
            data = memoryview(self._sock.recv(1 << 16))
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, mflags, mseq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    raise NetlinkError(0, "malformed netlink reply")
                payload = data[offset + _HDR.size:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return replies
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code)
                    return replies  # the acknowledgement
                replies.append((mtype, payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return replies

    # -- links --------------------------------------------------------------------------

    def link_lookup(self, ifname: str) -> list[int]:
        try:
            replies = self._request(RTM_GETLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, ifname))
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return []
            raise
        return [_decode_link(body)["index"] for kind, body in replies if kind == RTM_NEWLINK]

    def get_links(self, index: int | None = None) -> list[Message]:
        if index is None:
            replies = self._request(RTM_GETLINK, NLM_F_DUMP, _IFINFO.pack(0, 0, 0, 0, 0))
        else:
            replies = self._request(RTM_GETLINK, 0, _IFINFO.pack(0, 0, index, 0, 0))
        return [_decode_link(body) for kind, body in replies if kind == RTM_NEWLINK]

    def link(self, command: str, index: int = 0, ifname: str | None = None, kind: str | None = None,
             address: str | None = None, mtu: int | None = None, master: int | None = None,
             state: str | None = None, peer: dict[str, Any] | None = None) -> None:
        """``add`` (a bridge, or a veth pair with ``peer``), ``set`` (master, state) or ``del``."""
        flags = IFF_UP if state == "up" else 0
        change = IFF_UP if state in ("up", "down") else 0
        attrs = b""
        if ifname is not None:
            attrs += _str(IFLA_IFNAME, ifname)
        if address is not None:
            attrs += _mac(IFLA_ADDRESS, address)
        if mtu is not None:
            attrs += _u32(IFLA_MTU, mtu)
        if master is not None:
            attrs += _u32(IFLA_MASTER, master)
        if kind is not None:
            info = _str(IFLA_INFO_KIND, kind)
            if peer is not None:
                peer_attrs = _str(IFLA_IFNAME, peer["ifname"])
                if "address" in peer:
                    peer_attrs += _mac(IFLA_ADDRESS, peer["address"])
                if "mtu" in peer:
                    peer_attrs += _u32(IFLA_MTU, peer["mtu"])
                if "net_ns_fd" in peer:
                    peer_attrs += _u32(IFLA_NET_NS_FD, peer["net_ns_fd"])
                info += _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, _IFINFO.pack(0, 0, 0, 0, 0) + peer_attrs))
            attrs += _attr(IFLA_LINKINFO, info)
        body = _IFINFO.pack(0, 0, index, flags, change) + attrs
        if command == "add":
            self._request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        elif command == "set":
            self._request(RTM_NEWLINK, NLM_F_ACK, body)
        elif command == "del":
            self._request(RTM_DELLINK, NLM_F_ACK, body)
        else:
            raise ValueError(f"unknown link command {command!r}")

    # -- addresses ----------------------------------------------------------------------

    def get_addr(self, index: int | None = None, family: int = socket.AF_UNSPEC) -> list[Message]:
        replies = self._request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(family, 0, 0, 0, 0))
        found = [_decode_addr(body) for kind, body in replies if kind == RTM_NEWADDR]
        return [m for m in found if index is None or m["index"] == index]

    def addr(self, command: str, index: int, address: str, prefixlen: int, broadcast: str | None = None,
             family: int | None = None, flags: int = 0) -> None:
        """``add`` or ``del`` one address (IPv4 as ``ip addr`` does: local = address)."""
        family = family or (socket.AF_INET6 if ":" in address else socket.AF_INET)
        attrs = _ip(IFA_ADDRESS, address)
        if family == socket.AF_INET:
            attrs = _ip(IFA_LOCAL, address) + attrs
            if broadcast is not None:
                attrs += _ip(IFA_BROADCAST, broadcast)
        body = _IFADDR.pack(family, prefixlen, flags, RT_SCOPE_UNIVERSE, index) + attrs
        if command == "add":
            self._request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
        elif command == "del":
            self._request(RTM_DELADDR, NLM_F_ACK, body)
        else:
            raise ValueError(f"unknown addr command {command!r}")

    # -- routes -------------------------------------------------------------------------

    def route(self, command: str, dst: str, gateway: str, oif: int, proto: int,
              family: int | None = None) -> None:
        """``replace`` one unicast route of the main table."""
        if command != "replace":
            raise ValueError(f"unknown route command {command!r}")
        network = ipaddress.ip_network(dst)
        family = family or (socket.AF_INET6 if network.version == 6 else socket.AF_INET)
        attrs = _ip(RTA_GATEWAY, gateway) + _u32(RTA_OIF, oif)
        if network.prefixlen:
            attrs = _ip(RTA_DST, str(network.network_address)) + attrs
        body = _RTMSG.pack(family, network.prefixlen, 0, 0, RT_TABLE_MAIN, proto, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0) + attrs
        self._request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body)
