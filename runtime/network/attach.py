"""A container's networking at create, start, rename and exit (the
:class:`runtime.network.contract.ContainerNetworking` operations), as moby's
``allocateNetwork``/``releaseNetwork``.

At start (:func:`attach_container`) a container on bridge networks gets one endpoint per
network: addresses from IPAM, a veth pair created from the host namespace and configured
inside the container's (through the :class:`NetnsHandle` taken while its init waits), the
embedded DNS server on user networks, published ports on the gateway endpoint, then its
hosts and resolv.conf. The sandbox record is written *before* any veth exists, so a crash
is reconciled at the next start. :func:`detach_container` undoes all of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from runtime.errors import InvalidParameter, SystemError_
from runtime.network import bridge as br
from runtime.network.context import NetworkContext, delete_veths, mac_of, new_id, prefixlen6
from runtime.network.contract import EndpointConfig, SandboxRequest, needs_netns_setup
from runtime.network.dns import make_sockets
from runtime.network.etcfiles import parse_extra_hosts
from runtime.network.ipam import NoAvailableAddresses
from runtime.network.model import Endpoint, Network, PortRecord, Sandbox
from runtime.network.netns import NetnsGone, NetnsHandle, run_in_netns
from runtime.network.portmap import close_all, port_requests, publish
from runtime.network.sandbox_files import write_files
from runtime.network.sandboxes import ERR_NO_NETWORK, ERR_SHARED, check_endpoint, dns_names, link_local_cidrs, pick_gateway
from runtime.network.views import render
from runtime.ports import validate_port_bindings


async def validate_sandbox(ctx: NetworkContext, request: SandboxRequest) -> list[str]:
    """Check a container's networking config at create; returns warnings."""
    warnings: list[str] = []
    mode = request.network_mode
    if mode == "host":
        if request.port_bindings:
            warnings.append("Published ports are discarded when using host network mode")
    nets = ctx.resolve_requested(request)
    kinds = {n.driver for n, _ in nets}
    if len(nets) > 1 and ("null" in kinds or "host" in kinds):
        raise InvalidParameter(ERR_NO_NETWORK if "null" in kinds else ERR_SHARED)
    for net, cfg in nets:
        check_endpoint(net, cfg)
    validate_port_bindings(request.port_bindings)  # dockerd's texts, before the rest
    port_requests(request.exposed_ports, request.port_bindings, request.publish_all_ports)
    parse_extra_hosts(request.extra_hosts, ctx.host_gateway_ips())
    return warnings


async def attach_container(ctx: NetworkContext, request: SandboxRequest, pid: int | None) -> dict[str, Any]:
    """Set up the container's networking; its live ``NetworkSettings``."""
    async with ctx.lock:
        if request.container_id in ctx.sandboxes:
            await detach_locked(ctx, request.container_id)
        sandbox = Sandbox(request.container_id, new_id(), request, pid)
        mode = request.network_mode
        if mode.startswith("container:"):
            return render(ctx, sandbox)
        nets = ctx.resolve_requested(request)
        try:
            if needs_netns_setup(mode):
                if ctx.setup_error is not None:
                    raise SystemError_(f"bridge networking is unavailable: {ctx.setup_error}")
                if pid is None:
                    raise InvalidParameter("a running container's pid is needed to set up its network")
                # taken while the container is held before its command runs: its pid is its own
                try:
                    handle = NetnsHandle.of_pid(pid)
                except NetnsGone as exc:
                    raise SystemError_(f"container {request.container_id[:12]} exited before its network was set up: {exc}") from None
                ctx.netns[request.container_id] = handle
                sandbox.netns_inode = handle.inode
                await _attach_bridges(ctx, sandbox, nets, handle)
            else:
                for net, cfg in nets:
                    sandbox.endpoints[net.id] = Endpoint(net.id, new_id(), config=cfg)
                ctx.sandboxes[request.container_id] = sandbox
                ctx.save_sandbox(sandbox)
            await write_files(ctx, sandbox)
        except BaseException:
            await detach_locked(ctx, request.container_id, sandbox)
            raise
    for ep in sandbox.endpoints.values():
        joined = ctx.networks.get(ep.network_id)
        if joined is not None:
            ctx.event(joined, "connect", container=request.container_id)
    return render(ctx, sandbox)


async def _attach_bridges(ctx: NetworkContext, sandbox: Sandbox, nets: list[tuple[Network, EndpointConfig]],
                          handle: NetnsHandle) -> None:
    req = sandbox.request
    assert sandbox.pid is not None
    gateway_net = pick_gateway(nets)
    plans: list[br.VethPlan] = []
    for index, (net, cfg) in enumerate(nets):
        if not net.is_bridge:
            raise InvalidParameter(ERR_SHARED)
        try:
            ip = ctx.ipam.request_address(net.id, cfg.ipv4_address)
        except NoAvailableAddresses:
            raise SystemError_(
                f"no available IPv4 addresses on this network's address pools: {net.name} ({net.id})"
            ) from None
        try:
            ip6 = ctx.request_ip6(net, cfg)
        except BaseException:
            ctx.ipam.release_address(net.id, ip)  # not in the sandbox yet: the cleanup misses it
            raise
        ep = Endpoint(
            network_id=net.id, endpoint_id=new_id(), ifname=f"eth{index}",
            host_veth=br.random_veth_name(), ip=str(ip), prefixlen=net.prefixlen,
            gateway=net.gateway if net.id == gateway_net else "",
            mac=mac_of(cfg) or br.mac_for_ipv4(ip),
            config=cfg, dns_names=dns_names(req, cfg) if net.user_defined else [],
            ip6=ip6, prefixlen6=prefixlen6(net) if ip6 else 0,
            gateway6=net.gateway6 if ip6 and net.id == gateway_net else "",
        )
        sandbox.endpoints[net.id] = ep
        plans.append(br.VethPlan(ep.host_veth, ep.ifname, net.bridge, ep.mac, net.mtu,
                                 f"{ep.ip}/{ep.prefixlen}", net.gateway if net.id == gateway_net else "",
                                 link_local_cidrs(cfg), f"{ip6}/{ep.prefixlen6}" if ip6 else "",
                                 ep.gateway6))
    sandbox.dns = any(n.user_defined for n, _ in nets)
    ctx.sandboxes[sandbox.container_id] = sandbox
    ctx.save_sandbox(sandbox)  # before any veth exists: a crash from here on is reconciled
    want_dns = sandbox.dns

    def inside() -> tuple[bool, tuple[Any, Any] | None]:
        ipv6 = br.configure_peers(plans)
        return ipv6, make_sockets() if want_dns else None

    # one thread: veths created from the host namespace, then configured inside
    ipv6, sockets = await run_in_netns(handle, inside, before=lambda fd: br.create_veths(plans, fd))
    ctx.ipv6_in[sandbox.container_id] = ipv6
    if sockets is not None:
        await ctx.dns.serve(sandbox.container_id, *sockets)
    gw = next((ep for ep in sandbox.endpoints.values() if ep.gateway), None)
    if gw is not None:
        net = ctx.networks[gw.network_id]
        reqs = port_requests(req.exposed_ports, req.port_bindings, req.publish_all_ports)
        if net.host_binding_ip and net.host_binding_ip != "0.0.0.0":
            reqs = [r if r.host_ip else replace(r, host_ip=net.host_binding_ip) for r in reqs]
        if reqs:
            try:
                bindings = await publish(reqs, gw.ip, ctx.ports, ctx.ipv6_host)
            except SystemError_ as exc:
                raise SystemError_(
                    f"driver failed programming external connectivity on endpoint {req.name} "
                    f"({gw.endpoint_id}): {exc}"
                ) from exc
            ctx.bindings[sandbox.container_id] = bindings
            sandbox.ports = [
                PortRecord(b.proto, b.host_ip, b.host_port, b.container_ip, b.container_port, net.bridge)
                for b in bindings
            ]
            ctx.save_sandbox(sandbox)
            await ctx.sync_firewall()


async def detach_container(ctx: NetworkContext, container_id: str, only_pid: int | None = None) -> None:
    """``only_pid``: detach only if the sandbox still belongs to that process (an exit
    report may arrive after a restart already attached the container again)."""
    async with ctx.lock:
        sandbox = ctx.sandboxes.get(container_id)
        if sandbox is not None and only_pid is not None and sandbox.pid not in (None, only_pid):
            return
        if sandbox is None:
            ctx.drop_sandbox_file(container_id)
            return
        await detach_locked(ctx, container_id)
    for ep in sandbox.endpoints.values():
        net = ctx.networks.get(ep.network_id)
        if net is not None:
            ctx.event(net, "disconnect", container=container_id)


async def detach_locked(ctx: NetworkContext, container_id: str, sandbox: Sandbox | None = None) -> None:
    """Release a container's networking; the caller holds ``ctx.lock``."""
    sandbox = ctx.sandboxes.pop(container_id, None) or sandbox
    await ctx.dns.stop(container_id)
    had_ports = bool(ctx.bindings.get(container_id))
    await close_all(ctx.bindings.pop(container_id, []), ctx.ports)
    ctx.ext_servers.pop(container_id, None)
    ctx.ipv6_in.pop(container_id, None)
    handle = ctx.netns.pop(container_id, None)
    if handle is not None:
        handle.close()
    if sandbox is not None:
        veths = ctx.host_veths(sandbox)
        if veths:
            # deleting a veth waits for an RCU grace period (~20 ms); the kernel also
            # drops it by itself once the container's namespace dies, so nobody waits
            ctx.in_background(asyncio.to_thread(delete_veths, veths))
        for ep in sandbox.endpoints.values():
            if ep.ip:
                ctx.ipam.release_address(ep.network_id, ep.ip)
            ctx.ipam6.release_address(ep.network_id, ep.ip6)
        if had_ports or sandbox.ports:
            sandbox.ports = []
            await ctx.sync_firewall()
    ctx.drop_sandbox_file(container_id)


async def rename_container(ctx: NetworkContext, container_id: str, new_name: str) -> None:
    """A running container's new name (its DNS names follow)."""
    async with ctx.lock:
        sandbox = ctx.sandboxes.get(container_id)
        if sandbox is None:
            return
        sandbox.request = replace(sandbox.request, name=new_name.lstrip("/"))
        for ep in sandbox.endpoints.values():
            if ep.dns_names:
                ep.dns_names = dns_names(sandbox.request, ep.config)
        ctx.save_sandbox(sandbox)


__all__ = ["validate_sandbox", "attach_container", "detach_container", "detach_locked", "rename_container"]
