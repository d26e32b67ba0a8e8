"""``POST /networks/{id}/connect`` and ``/disconnect``, as moby's
``ConnectToNetwork``/``DisconnectFromNetwork``.

A container that does not run only gets its ``EndpointsConfig`` changed (through the
:class:`runtime.network.contract.ContainerDirectory` the engine registered); a running one
also gets the endpoint added to (or removed from) its live sandbox: veth, addresses, DNS
server, hosts and resolv.conf.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

from runtime.errors import Forbidden, InvalidParameter, NotFound, SystemError_
from runtime.network import bridge as br
from runtime.network.context import NetworkContext, mac_of, new_id, prefixlen6
from runtime.network.contract import PRIMARY_LEFT, EndpointConfig
from runtime.network.dns import make_sockets
from runtime.network.ipam import NoAvailableAddresses
from runtime.network.model import Endpoint, Network, Sandbox
from runtime.network.netns import run_in_netns
from runtime.network.portmap import close_all
from runtime.network.sandbox_files import write_files
from runtime.network.sandboxes import (
    ERR_CONNECT_HOST,
    ERR_DISCONNECT_HOST,
    ERR_NO_NETWORK,
    ERR_SHARED,
    check_endpoint,
    dns_names,
    link_local_cidrs,
)
from runtime.network.views import render


async def connect(ctx: NetworkContext, net_ref: str, container_ref: str, config: EndpointConfig) -> None:
    """Join a container to a network (live when it runs)."""
    directory = ctx.need_directory()
    net = ctx.find(net_ref)
    target = directory.network_target(container_ref)
    req = target.request
    mode = req.network_mode
    if mode == "host" or mode.startswith("container:"):
        raise InvalidParameter(ERR_SHARED)
    if net.driver == "host":
        raise InvalidParameter(ERR_CONNECT_HOST)
    if mode == "none" or net.driver == "null":
        raise InvalidParameter(ERR_NO_NETWORK)
    check_endpoint(net, config)
    joined = [n.id for n, _ in ctx.resolve_requested(req)]
    sandbox = ctx.sandboxes.get(req.container_id)
    if net.id in joined:
        if target.running_pid is not None and sandbox is not None and net.id in sandbox.endpoints:
            raise Forbidden(f"endpoint with name {req.name} already exists in network {net.name}")
        return
    endpoints = {k: v for k, v in req.endpoints.items() if not ctx.names_network(k, net)}
    endpoints[net.name] = config
    settings = None
    if target.running_pid is not None and sandbox is not None:
        async with ctx.lock:
            await _attach_one(ctx, sandbox, net, config)
        settings = render(ctx, sandbox)
        ctx.event(net, "connect", container=req.container_id)
    await directory.endpoints_changed(req.container_id, endpoints, settings)


async def _attach_one(ctx: NetworkContext, sandbox: Sandbox, net: Network, cfg: EndpointConfig) -> None:
    req = sandbox.request
    assert sandbox.pid is not None
    used = {ep.ifname for ep in sandbox.endpoints.values()}
    ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
    try:
        ip = ctx.ipam.request_address(net.id, cfg.ipv4_address)
    except NoAvailableAddresses:
        raise SystemError_(
            f"no available IPv4 addresses on this network's address pools: {net.name} ({net.id})"
        ) from None
    has_gateway = any(ep.gateway for ep in sandbox.endpoints.values())
    gateway = net.gateway if not has_gateway and not net.internal else ""
    try:
        ip6 = ctx.request_ip6(net, cfg)
    except BaseException:
        ctx.ipam.release_address(net.id, ip)
        raise
    ep = Endpoint(net.id, new_id(), ifname, br.random_veth_name(), str(ip), net.prefixlen, gateway,
                  mac_of(cfg) or br.mac_for_ipv4(ip), ip6, prefixlen6(net) if ip6 else 0,
                  net.gateway6 if ip6 and gateway else "", cfg,
                  dns_names(req, cfg) if net.user_defined else [])
    plan = br.VethPlan(ep.host_veth, ifname, net.bridge, ep.mac, net.mtu, f"{ep.ip}/{ep.prefixlen}", gateway,
                       link_local_cidrs(cfg), f"{ip6}/{ep.prefixlen6}" if ip6 else "", ep.gateway6)
    sandbox.endpoints[net.id] = ep
    sandbox.request = replace(req, endpoints={**req.endpoints, net.name: cfg})
    ctx.save_sandbox(sandbox)
    try:
        handle = ctx.handle(sandbox)
        start_dns = net.user_defined and not ctx.dns.serving(sandbox.container_id)

        def inside() -> tuple[Any, Any] | None:
            br.configure_peer(plan)
            return make_sockets() if start_dns else None

        sockets = await run_in_netns(handle, inside, before=lambda fd: br.create_veth(plan, fd))
        if sockets is not None:
            sandbox.dns = True
            await ctx.dns.serve(sandbox.container_id, *sockets)
        await write_files(ctx, sandbox)
        ctx.save_sandbox(sandbox)
    except BaseException:
        sandbox.endpoints.pop(net.id, None)
        ctx.ipam.release_address(net.id, ip)
        ctx.ipam6.release_address(net.id, ip6)
        await asyncio.to_thread(br.delete_veth, ep.host_veth, net.bridge)
        ctx.save_sandbox(sandbox)
        raise


async def disconnect(ctx: NetworkContext, net_ref: str, container_ref: str, force: bool = False) -> None:
    """Take a container off a network (live when it runs)."""
    directory = ctx.need_directory()
    target = directory.network_target(container_ref)
    req = target.request
    try:
        net: Network | None = ctx.find(net_ref)
    except NotFound:
        if not force:
            raise
        net = None
    name = net.name if net is not None else net_ref
    sandbox = ctx.sandboxes.get(req.container_id)
    endpoints = {k: v for k, v in req.endpoints.items()
                 if k != name and (net is None or not ctx.names_network(k, net))}
    if net is not None and ctx.is_primary(req, net):
        endpoints[PRIMARY_LEFT] = EndpointConfig()
    if target.running_pid is None or net is None or sandbox is None:
        joined = [] if net is None else [n.id for n, _ in ctx.resolve_requested(req)]
        if net is not None and net.id not in joined:
            raise SystemError_(f"container {req.container_id} is not connected to the network {name}")
        await directory.endpoints_changed(req.container_id, endpoints, None)
        return
    if req.network_mode == "host" and net.driver == "host":
        raise InvalidParameter(ERR_DISCONNECT_HOST)
    if net.id not in sandbox.endpoints:
        raise SystemError_(f"container {req.container_id} is not connected to network {net.name}")
    async with ctx.lock:
        await _detach_one(ctx, sandbox, net)
    ctx.event(net, "disconnect", container=req.container_id)
    await directory.endpoints_changed(req.container_id, endpoints, render(ctx, sandbox))


async def _detach_one(ctx: NetworkContext, sandbox: Sandbox, net: Network) -> None:
    ep = sandbox.endpoints.pop(net.id)
    handle = ctx.netns.get(sandbox.container_id)
    if handle is not None:
        with contextlib.suppress(Exception):
            await run_in_netns(handle, lambda: br.remove_peer(ep.ifname))
    await asyncio.to_thread(br.delete_veth, ep.host_veth, net.bridge)
    ctx.ipam.release_address(net.id, ep.ip)
    ctx.ipam6.release_address(net.id, ep.ip6)
    if ep.gateway and ctx.bindings.get(sandbox.container_id):
        await close_all(ctx.bindings.pop(sandbox.container_id), ctx.ports)
        sandbox.ports = []
        await ctx.sync_firewall()
    if sandbox.dns and not any(
        (n := ctx.networks.get(e.network_id)) is not None and n.user_defined for e in sandbox.endpoints.values()
    ):
        sandbox.dns = False
        await ctx.dns.stop(sandbox.container_id)
    sandbox.request = replace(
        sandbox.request, endpoints={k: v for k, v in sandbox.request.endpoints.items() if k not in (net.name, net.id)}
    )
    await write_files(ctx, sandbox)
    ctx.save_sandbox(sandbox)


__all__ = ["connect", "disconnect"]
