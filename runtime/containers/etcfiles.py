"""The /etc/hostname, /etc/hosts and /etc/resolv.conf files kept in a container's directory
and bind-mounted into it (dockerd writes the same three files)."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.containers.model import Container

HOSTS_DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_LOCAL_NS = re.compile(r"^\s*nameserver\s+(127\.\d+\.\d+\.\d+|::1)\s*$")


def hosts_content(container: Container, host_hosts: str | None = None) -> str:
    hc = container.host_config
    if hc.network_mode == "host" and host_hosts is not None:
        text = host_hosts if host_hosts.endswith("\n") or not host_hosts else host_hosts + "\n"
    else:
        text = HOSTS_DEFAULT
    for entry in hc.extra_hosts or ():
        name, sep, address = entry.partition(":") if "=" not in entry else entry.partition("=")
        if sep:
            text += f"{address}\t{name}\n"
    return text


def resolv_conf_content(container: Container, host_resolv: str) -> str:
    """The host's resolv.conf with --dns/--dns-search/--dns-option applied; for a private
    network namespace, localhost nameservers are unreachable and replaced by defaults."""
    hc = container.host_config
    lines = host_resolv.splitlines()
    private_net = hc.network_mode != "host"
    if private_net:
        lines = [line for line in lines if not _LOCAL_NS.match(line)]
    if hc.dns:
        lines = [line for line in lines if not line.strip().startswith("nameserver")]
        lines += [f"nameserver {ns}" for ns in hc.dns]
    if hc.dns_search:
        lines = [line for line in lines if not line.strip().startswith(("search", "domain"))]
        lines.append("search " + " ".join(hc.dns_search))
    if hc.dns_options:
        lines = [line for line in lines if not line.strip().startswith("options")]
        lines.append("options " + " ".join(hc.dns_options))
    if private_net and not any(line.strip().startswith("nameserver") for line in lines):
        lines += [f"nameserver {ns}" for ns in DEFAULT_NAMESERVERS]
    return "\n".join(lines) + "\n"


def write_etc_files(container: Container, host_etc: Path = Path("/etc")) -> None:
    """(Re)write the three files; called at create and again at each start."""
    container.hostname_path.write_text(container.config.hostname + "\n")
    try:
        host_hosts = (host_etc / "hosts").read_text()
    except OSError:
        host_hosts = None
    container.hosts_path.write_text(hosts_content(container, host_hosts))
    try:
        host_resolv = (host_etc / "resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    container.resolv_conf_path.write_text(resolv_conf_content(container, host_resolv))
    for path in (container.hostname_path, container.hosts_path, container.resolv_conf_path):
        path.chmod(0o644)


__all__ = ["HOSTS_DEFAULT", "hosts_content", "resolv_conf_content", "write_etc_files"]
