"""Listening sockets for ``-H`` addresses: unix (0660, root:group), tcp (TLS), fd:// (systemd)."""

from __future__ import annotations

import grp
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from compat_api.daemon.options import DEFAULT_GROUP, DaemonOptions, OptionsError

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3


@dataclass(frozen=True, slots=True)
class Listener:
    address: str
    sock: socket.socket
    ssl_context: ssl.SSLContext | None = None
    unix_path: Path | None = None


def _socket_group(name: str) -> int | None:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name == DEFAULT_GROUP:
            log.warning("group %s not found; the API socket stays root:root", name)
            return None
        raise OptionsError(f"can't create unix socket: group {name} not found") from None


def _unix_listener(address: str, path_text: str, options: DaemonOptions) -> Listener:
    if not path_text:
        raise OptionsError(f"invalid unix socket address: {address}")
    path = Path(path_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    gid = _socket_group(options.group)
    if gid is not None:
        os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    sock.listen(1024)
    return Listener(address, sock, unix_path=path)


def _tls_context(options: DaemonOptions) -> ssl.SSLContext | None:
    if not (options.tlsverify or options.tls):
        return None
    if not options.tlscert or not options.tlskey:
        raise OptionsError("TLS requires --tlscert and --tlskey")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tlscert, options.tlskey)
    if options.tlsverify:
        if not options.tlscacert:
            raise OptionsError("--tlsverify requires --tlscacert")
        context.load_verify_locations(options.tlscacert)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tcp_listener(address: str, netloc: str, options: DaemonOptions) -> Listener:
    host, _, port_text = netloc.rpartition(":")
    host = host.strip("[]")
    if not port_text.isdigit():
        raise OptionsError(f"invalid tcp address (need tcp://HOST:PORT): {address}")
    context = _tls_context(options)
    if context is None or not options.tlsverify:
        if not _is_loopback(host) and options.tls is not False:
            raise OptionsError(
                f"refusing to listen on {address} without --tlsverify: anyone reaching this "
                "address would get root on this host. Use --tlsverify with certificates, or "
                "pass --tls=false explicitly to accept the risk."
            )
        log.warning("API listening on %s without TLS client verification", address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host or "0.0.0.0", int(port_text)))
    sock.listen(1024)
    return Listener(address, sock, ssl_context=context)


def _systemd_listeners(address: str, selector: str) -> list[Listener]:
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        raise OptionsError("no sockets found via socket activation: make sure the service was started by systemd")
    count = int(os.environ.get("LISTEN_FDS", "0"))
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
    if selector:
        wanted = int(selector)
        if wanted not in fds:
            raise OptionsError(f"too few socket activated files passed in by systemd: {address}")
        fds = [wanted]
    if not fds:
        raise OptionsError("no sockets found via socket activation: make sure the service was started by systemd")
    listeners = []
    for fd in fds:
        os.set_inheritable(fd, False)
        listeners.append(Listener(address, socket.socket(fileno=fd)))
    return listeners


def open_listeners(options: DaemonOptions) -> list[Listener]:
    """Create every listening socket; on error, the ones already made are closed."""
    listeners: list[Listener] = []
    try:
        for address in options.hosts:
            parts = urlsplit(address if "://" in address else f"tcp://{address}")
            if parts.scheme == "unix":
                listeners.append(_unix_listener(address, parts.path, options))
            elif parts.scheme == "tcp":
                listeners.append(_tcp_listener(address, parts.netloc, options))
            elif parts.scheme == "fd":
                listeners.extend(_systemd_listeners(address, parts.netloc))
            else:
                raise OptionsError(f"invalid bind address format: {address}")
    except BaseException:
        close_listeners(listeners)
        raise
    return listeners


def close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener.sock.close()
        if listener.unix_path is not None:
            try:
                listener.unix_path.unlink()
            except FileNotFoundError:
                pass
