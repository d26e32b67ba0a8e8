"""The /etc/hostname, /etc/hosts and /etc/resolv.conf files kept in a container's directory
and bind-mounted into it (dockerd writes the same three files)."""

from __future__ import annotations

from pathlib import Path

from runtime.containers.model import Container
from runtime.network import etcfiles as etc


def hosts_content(container: Container, host_hosts: str | None = None) -> str:
    """What /etc/hosts holds until the network service writes the container's own (at
    each start, with ``--add-host`` records, links and its addresses): the host's file on
    the host network, else the default records, rendered by :mod:`runtime.network.etcfiles`."""
    hc = container.host_config
    if hc.network_mode == "host" and host_hosts is not None:
        return host_hosts if host_hosts.endswith("\n") or not host_hosts else host_hosts + "\n"
    return etc.hosts_content([], [], container.config.hostname, container.config.domainname)


def resolv_conf_content(container: Container, host_resolv: str) -> str:
    """The host's resolv.conf with --dns/--dns-search/--dns-option applied, as
    :func:`runtime.network.etcfiles.container_resolv_conf` renders it for the default
    bridge (``legacy``: no localhost nameservers, Docker's defaults when none is left)."""
    hc = container.host_config
    mode = hc.network_mode if hc.network_mode in ("host", "none") else "legacy"
    text, _ = etc.container_resolv_conf(host_resolv, mode, hc.dns or (), hc.dns_search or (),
                                        hc.dns_options or ())
    return text


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


__all__ = ["hosts_content", "resolv_conf_content", "write_etc_files"]
