"""A container's ``/etc/hosts`` and ``/etc/resolv.conf``, and its legacy links, as
libnetwork's ``sandbox_dns_unix.go``.

The files are bind-mounted into the container, so they are rewritten in place (same
inode) whenever the container's endpoints change. ``host`` networking copies the host's
``/etc/hosts`` unless ``--add-host`` asks for entries; the others get their own
addresses, ``--add-host`` entries and the addresses of ``--link`` targets on the default
bridge. ``resolv.conf`` points at the embedded DNS server on user networks.
"""

from __future__ import annotations

import asyncio

from runtime.network.context import NetworkContext
from runtime.network.contract import SandboxRequest
from runtime.network.etcfiles import container_resolv_conf, hosts_content, parse_extra_hosts
from runtime.network.links import link_env
from runtime.network.model import Sandbox


def _write_in_place(path: str, content: str) -> None:
    """Overwrite a bind-mounted file without replacing its inode."""
    if not path:
        return
    with open(path, "w") as f:
        f.write(content)


async def write_files(ctx: NetworkContext, sandbox: Sandbox) -> None:
    """(Re)write the sandbox's hosts and resolv.conf; remembers its DNS upstreams."""
    req = sandbox.request
    mode = req.network_mode
    host_text = ctx.read_host_resolv()
    extra = parse_extra_hosts(req.extra_hosts, ctx.host_gateway_ips())
    if mode == "host":
        resolv, _ = container_resolv_conf(host_text, "host", req.dns, req.dns_search, req.dns_options)
        if extra:
            hosts = hosts_content(extra, [], req.hostname, req.domainname, ipv6=ctx.ipv6_host)
        else:
            try:
                hosts = ctx.host_hosts.read_text()
            except OSError:
                hosts = hosts_content([], [], req.hostname, req.domainname)
    else:
        links = _link_records(ctx, req)
        own = [ep.ip for ep in sandbox.endpoints.values() if ep.ip]
        own += [ep.ip6 for ep in sandbox.endpoints.values() if ep.ip6]
        ipv6 = ctx.ipv6_in.get(sandbox.container_id, True)
        hosts = hosts_content(extra + links, own, req.hostname, req.domainname, ipv6=ipv6)
        resolv_mode = "internal" if sandbox.dns else ("legacy" if sandbox.endpoints and own else "none")
        resolv, ext = container_resolv_conf(host_text, resolv_mode, req.dns, req.dns_search, req.dns_options)
        ctx.ext_servers[sandbox.container_id] = ext
    await asyncio.to_thread(_write_in_place, req.hosts_path, hosts)
    await asyncio.to_thread(_write_in_place, req.resolv_conf_path, resolv)


def _link_records(ctx: NetworkContext, req: SandboxRequest) -> list[tuple[str, str]]:
    records: list[tuple[str, str]] = []
    bridge_id = ctx.default_bridge.id
    for link in req.links:
        target = ctx.sandboxes.get(link.target_id)
        if target is None:
            continue
        ep = target.endpoints.get(bridge_id)
        if ep is None or not ep.ip:
            continue
        alias = link.alias.rsplit("/", 1)[-1]
        names = f"{alias} {target.request.hostname}"
        if alias != target.request.name:
            names += f" {target.request.name}"
        records.append((names, ep.ip))
    return records


def link_environment(ctx: NetworkContext, req: SandboxRequest) -> list[str]:
    """The variables of the container's legacy links to running containers on the
    default bridge (``docker run --link name:alias``)."""
    env: list[str] = []
    bridge_id = ctx.default_bridge.id
    for link in req.links:
        target = ctx.sandboxes.get(link.target_id)
        ep = target.endpoints.get(bridge_id) if target is not None else None
        if target is None or ep is None or not ep.ip:
            continue
        ports = [*target.request.exposed_ports, *target.request.port_bindings]
        env += link_env(link.alias, f"/{req.name}/{link.alias}", ep.ip, ports, target.request.env)
    return env


__all__ = ["write_files", "link_environment"]
