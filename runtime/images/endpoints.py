"""Which endpoints reach a registry: ``insecure-registries``, ``registry-mirrors`` and TLS.

:class:`RegistryOptions` holds the daemon's options and derives the endpoint list dockerd
derives (:meth:`RegistryOptions.endpoints`). A registry is insecure when it is listed by name
or its address is in an insecure CIDR; 127.0.0.0/8 and ::1 always are, so loopback
registries work over plain HTTP out of the box. For an insecure registry HTTPS (without
certificate checks) is tried first, then HTTP, as dockerd does; Docker Hub (``docker.io``)
is reached through ``registry-1.docker.io`` after any mirrors. Client certificates and CAs
come from ``/etc/docker/certs.d/<host>``, as dockerd reads them.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from runtime.errors import InvalidParameter
from runtime.images.reference import DEFAULT_DOMAIN

DOCKER_HUB_REGISTRY = "registry-1.docker.io"
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")
CERTS_DIR = Path("/etc/docker/certs.d")


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str  # scheme://host[:port], no trailing slash
    mirror: bool = False
    verify_tls: bool = True

    @property
    def is_http(self) -> bool:
        return self.url.startswith("http://")


def _split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def index_name(server_address: str) -> str:
    """The registry named by ``docker login``'s server address (``https://host/v1/``,
    ``host:port``, ``http://host``...); Docker Hub's spellings give ``docker.io``."""
    text = server_address.strip()
    if not text:
        return DEFAULT_DOMAIN
    if "://" in text:
        text = urlsplit(text).netloc or text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if text in ("index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"):
        return DEFAULT_DOMAIN
    return text


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """The daemon's ``insecure-registries`` (CIDRs or ``host[:port]``) and
    ``registry-mirrors`` (URLs, used for Docker Hub pulls)."""

    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    _cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=(), init=False, repr=False)
    _names: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def __post_init__(self) -> None:
        cidrs = [ipaddress.ip_network(c) for c in DEFAULT_INSECURE_CIDRS]
        names: set[str] = set()
        for entry in self.insecure:
            text = entry.strip()
            if "://" in text:
                raise InvalidParameter(f"insecure registry {entry} should not contain '://'")
            try:
                cidrs.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            names.add(text.rstrip("/"))
        for mirror in self.mirrors:
            parts = urlsplit(mirror)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidParameter(f"invalid mirror: unsupported scheme {parts.scheme!r} in {mirror!r}")
            if parts.path not in ("", "/") or parts.query:
                raise InvalidParameter(f"invalid mirror: path, query, or fragment at end of the URI {mirror!r}")
        object.__setattr__(self, "_cidrs", tuple(cidrs))
        object.__setattr__(self, "_names", frozenset(names))

    @property
    def insecure_cidrs(self) -> list[str]:
        return [str(c) for c in self._cidrs]

    @property
    def insecure_names(self) -> list[str]:
        return sorted(self._names)

    def is_insecure(self, host: str) -> bool:
        """dockerd's ``!isSecureIndex``. May resolve ``host`` (blocking): call in a thread
        unless it is an IP literal, ``localhost`` or a configured name."""
        if host in self._names:
            return True
        name, _port = _split_host_port(host)
        if name in self._names:
            return True
        if host == DEFAULT_DOMAIN or name == DOCKER_HUB_REGISTRY:
            return False
        return any(ip in net for ip in _addresses(name) for net in self._cidrs if ip.version == net.version)

    def needs_lookup(self, host: str) -> bool:
        name, _ = _split_host_port(host)
        if host in self._names or name in self._names or host == DEFAULT_DOMAIN or name == "localhost":
            return False
        try:
            ipaddress.ip_address(name)
            return False
        except ValueError:
            return True

    def endpoints(self, domain: str, *, mirrors: bool) -> list[Endpoint]:
        """Endpoints to try for ``domain``, in order (blocking; see :meth:`is_insecure`)."""
        out: list[Endpoint] = []
        if domain == DEFAULT_DOMAIN:
            if mirrors:
                for mirror in self.mirrors:
                    url = mirror.rstrip("/")
                    out.append(Endpoint(url, mirror=True, verify_tls=not self.is_insecure(urlsplit(url).netloc)))
            out.append(Endpoint(f"https://{DOCKER_HUB_REGISTRY}"))
            return out
        if self.is_insecure(domain):
            return [Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}", verify_tls=False)]
        return [Endpoint(f"https://{domain}")]


def _addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    if name == "localhost":
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return out


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext | bool:
    if endpoint.is_http:
        return False
    if not endpoint.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    host = urlsplit(endpoint.url).netloc
    certs = CERTS_DIR / host
    if not certs.is_dir():
        return True
    # dockerd's per-registry certificates: CA bundles *.crt, client pairs *.cert + *.key
    ctx = ssl.create_default_context()
    for crt in sorted(certs.glob("*.crt")):
        ctx.load_verify_locations(cafile=str(crt))
    for cert in sorted(certs.glob("*.cert")):
        key = cert.with_suffix(".key")
        if key.exists():
            ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _resolver() -> str:
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                host = parts[1]
                return f"[{host}]:53" if ":" in host else f"{host}:53"
    except OSError:
        pass
    return ""


def dial_error(exc: BaseException, host: str, port: int) -> str:
    """Go's ``net.Dial`` wording for a failed connection."""
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    if isinstance(cause, socket.gaierror) or type(exc).__name__ == "ClientConnectorDNSError":
        resolver = _resolver()
        where = f" on {resolver}" if resolver else ""
        return f"dial tcp: lookup {host}{where}: no such host"
    if isinstance(cause, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(cause, (TimeoutError, socket.timeout)):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(cause, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
        reason = str(getattr(cause, "reason", "") or cause).lower()
        if any(s in reason for s in ("wrong_version", "wrong version", "record layer", "http_request", "packet length")):
            return "http: server gave HTTP response to HTTPS client"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"x509: {getattr(exc, 'certificate_error', cause)}"
        return f"tls: {cause}"
    if isinstance(cause, OSError) and cause.strerror:
        return f"dial tcp {host}:{port}: {cause.strerror.lower()}"
    return str(cause) or type(cause).__name__
