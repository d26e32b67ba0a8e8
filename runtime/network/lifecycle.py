"""Networking at daemon start (restore) and stop (teardown), as libnetwork's controller.

:func:`load`: the IPAM pools are re-requested from the network records, bridges are
(re)claimed, and every sandbox record is checked against the kernel: if its container
still lives (same pid, same netns inode) its addresses, DNS listeners and published ports
are restored, otherwise its veths are deleted and its addresses stay free. Firewall rules
are then re-rendered from that state.

:func:`close`: a clean stop removes every firewall rule and releases every user-network
bridge with no live endpoint (with live-restore it keeps them for the containers left
running). So a crash leaks nothing that the next start does not take back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from dataclasses import replace
from typing import Any

from runtime.network import bridge as br
from runtime.network.context import NetworkContext, delete_veths, new_id, prefixlen6
from runtime.network.dns import make_sockets
from runtime.network.etcfiles import container_resolv_conf
from runtime.network.ipam import PoolConfig
from runtime.network.ipam6 import ERR_NO_IPV6, host_has_ipv6, random_ula
from runtime.network.model import (
    OPT_BRIDGE_NAME,
    OPT_DEFAULT_BRIDGE,
    OPT_HOST_BINDING,
    OPT_ICC,
    OPT_MASQUERADE,
    OPT_MTU,
    BridgeClaim,
    Network,
    Sandbox,
)
from runtime.network.netns import NetnsGone, NetnsHandle, run_in_netns
from runtime.network.portmap import Binding, PortRequest, close_all, publish
from runtime.statefile import read_json
from runtime.timefmt import rfc3339_nano

log = logging.getLogger(__name__)


def claim(net: Network) -> BridgeClaim:
    """Claim the network's bridge (created or adopted) with its IPv4 gateway and, for an
    IPv6 network, its IPv6 gateway, remembering what was done to an adopted one."""
    result = br.claim_bridge(net.bridge, f"{net.gateway}/{net.prefixlen}", net.mtu, net.bridge_claim)
    if net.subnet6:
        enabled, added = br.add_bridge_address6(net.bridge, _cidr6(net))
        if not result.created:
            result = replace(result, added6=_cidr6(net) if added else result.added6,
                             enabled_ipv6=result.enabled_ipv6 or enabled)
    return result


def _cidr6(net: Network) -> str:
    return f"{net.gateway6}/{prefixlen6(net)}"


async def load(ctx: NetworkContext) -> None:
    """Restore the daemon's networking from ``<data-root>/network/`` and the kernel."""
    for sub in ("networks", "sandboxes"):
        (ctx.root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(ctx.root, 0o700)
    for path in sorted((ctx.root / "networks").glob("*.json")):
        try:
            net = Network.from_json(read_json(path))
        except (OSError, ValueError, TypeError, KeyError):
            log.warning("skipping unreadable network record %s", path)
            continue
        ctx.networks[net.id] = net
    _ensure_predefined(ctx)
    for net in ctx.networks.values():
        if net.is_bridge:
            try:
                _request_pool(ctx, net)
            except Exception as exc:  # keep the daemon up; the network just cannot be used
                log.error("network %s: cannot restore its pool %s: %s", net.name, net.subnet, exc)
    try:
        br.enable_ip_forward()
        await ctx.firewall.setup()
        await _claim_bridge(ctx, ctx.default_bridge)
    except Exception as exc:
        # keep the daemon (and host/none networking) usable where the host refuses
        # bridges or iptables (no CAP_NET_ADMIN...); bridge attachments report why
        ctx.setup_error = str(exc)
        log.error("bridge networking is unavailable: %s", exc)
    if ctx.setup_error is None:
        for net in ctx.networks.values():
            if net.user_defined:
                try:
                    await _claim_bridge(ctx, net)
                except Exception as exc:  # that network alone is unusable
                    log.error("network %s: cannot set up bridge %s: %s", net.name, net.bridge, exc)
    await _restore_sandboxes(ctx)
    if ctx.setup_error is None:
        await ctx.sync_firewall()


async def _claim_bridge(ctx: NetworkContext, net: Network) -> None:
    net.bridge_claim = await asyncio.to_thread(claim, net)
    ctx.save_network(net)


def _ensure_predefined(ctx: NetworkContext) -> None:
    by_name = {n.name: n for n in ctx.networks.values()}
    bip = ipaddress.IPv4Interface(ctx.config.bip)
    bridge_opts = {
        OPT_DEFAULT_BRIDGE: "true", OPT_ICC: "true", OPT_MASQUERADE: "true",
        OPT_HOST_BINDING: "0.0.0.0", OPT_BRIDGE_NAME: ctx.config.bridge, OPT_MTU: "1500",
    }
    now = rfc3339_nano(time.time_ns())
    subnet6 = gateway6 = ""
    if ctx.config.ipv6:
        if not host_has_ipv6():
            log.error("--ipv6: %s; the default bridge stays IPv4 only", ERR_NO_IPV6)
        else:
            previous = by_name.get("bridge")
            kept = previous.subnet6 if previous is not None and previous.subnet6 else random_ula()
            six = ipaddress.IPv6Network(ctx.config.fixed_cidr_v6 or kept)
            subnet6, gateway6 = str(six), str(six.network_address + 1)
    wanted: dict[str, dict[str, Any]] = {
        "bridge": dict(driver="bridge", options=bridge_opts, subnet=str(bip.network), gateway=str(bip.ip),
                       bridge=ctx.config.bridge, ip_range="", enable_ipv6=bool(subnet6),
                       subnet6=subnet6, gateway6=gateway6),
        "host": dict(driver="host"),
        "none": dict(driver="null"),
    }
    for name, attrs in wanted.items():
        net = by_name.get(name)
        if net is None:
            net = Network(id=new_id(), name=name, driver=str(attrs["driver"]), created=now)
        elif attrs.get("bridge", net.bridge) != net.bridge:
            net.bridge_claim = None  # another interface now: what was done to the old one is moot
        for key, value in attrs.items():
            setattr(net, key, value)
        ctx.networks[net.id] = net
        ctx.save_network(net)


def _request_pool(ctx: NetworkContext, net: Network) -> None:
    if net.name == "bridge":
        ctx.ipam.request_pool(net.id, PoolConfig(subnet=net.subnet), gateway_ip=net.gateway)
        if net.subnet6:
            ctx.ipam6.request_pool(net.id, net.subnet6, net.gateway6)
        return
    cfg = next((c for c in net.ipam_config if c.subnet and ":" not in c.subnet), PoolConfig())
    if net.subnet6:
        ctx.ipam6.request_pool(net.id, net.subnet6, net.gateway6)
    ctx.ipam.request_pool(
        net.id, PoolConfig(subnet=net.subnet, ip_range=net.ip_range, gateway=net.gateway,
                           aux_addresses=cfg.aux_addresses),
    )


async def _restore_sandboxes(ctx: NetworkContext) -> None:
    for path in sorted((ctx.root / "sandboxes").glob("*.json")):
        try:
            sandbox = Sandbox.from_json(read_json(path))
        except (OSError, ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)
            continue
        handle = None
        if sandbox.pid is not None and sandbox.netns_inode:
            with contextlib.suppress(NetnsGone):
                handle = NetnsHandle.of_pid(sandbox.pid, expect_inode=sandbox.netns_inode)
        if handle is not None:
            try:
                await _revive(ctx, sandbox, handle)
                continue
            except Exception as exc:
                handle.close()
                ctx.netns.pop(sandbox.container_id, None)
                log.warning("container %s: cannot restore networking: %s", sandbox.container_id[:12], exc)
        await asyncio.to_thread(delete_veths, ctx.host_veths(sandbox))
        path.unlink(missing_ok=True)


async def _revive(ctx: NetworkContext, sandbox: Sandbox, handle: NetnsHandle) -> None:
    ctx.netns[sandbox.container_id] = handle
    for ep in sandbox.endpoints.values():
        if ep.ip and ep.network_id in ctx.networks:
            with contextlib.suppress(Exception):
                ctx.ipam.request_address(ep.network_id, ep.ip)
            if ep.ip6:
                with contextlib.suppress(Exception):
                    ctx.ipam6.request_address(ep.network_id, ep.ip6)
    ctx.sandboxes[sandbox.container_id] = sandbox
    if sandbox.dns and sandbox.pid is not None:
        host_text = ctx.read_host_resolv()
        req = sandbox.request
        _, ext = container_resolv_conf(host_text, "internal", req.dns, req.dns_search, req.dns_options)
        ctx.ext_servers[sandbox.container_id] = ext
        udp, tcp = await run_in_netns(handle, make_sockets)
        await ctx.dns.serve(sandbox.container_id, udp, tcp)
    bindings: list[Binding] = []
    for rec in sandbox.ports:
        with contextlib.suppress(Exception):
            bindings.extend(await publish(
                [PortRequest(rec.container_port, rec.proto, rec.host_ip, rec.host_port, rec.host_port)],
                rec.container_ip, ctx.ports, False,
            ))
    ctx.bindings[sandbox.container_id] = bindings


async def close(ctx: NetworkContext, keep_running: bool = False) -> None:
    """Clean stop: stop DNS listeners and proxies, remove every firewall rule, and
    delete user-network bridges that no running container uses.

    ``keep_running`` (live-restore): containers outlive the daemon, so firewall
    rules, bridges, veths and sandbox records stay; only what lives in this process
    (embedded DNS, userland proxies) stops, and :func:`load` re-creates it."""
    async with ctx.lock:
        ctx.closed = True
        if ctx.background:
            await asyncio.gather(*ctx.background, return_exceptions=True)
        await ctx.dns.close()
        for cid, bindings in list(ctx.bindings.items()):
            await close_all(bindings, ctx.ports)
        ctx.bindings.clear()
        if keep_running:
            return
        if ctx.setup_error is None:
            await ctx.firewall.teardown()
            if ctx.fw6_state == "ready":
                await ctx.firewall6.teardown()
        used = {ep.network_id for sb in ctx.sandboxes.values() for ep in sb.endpoints.values()}
        for net in ctx.networks.values():
            bridge_claim = net.bridge_claim
            if bridge_claim is None or net.id in used:
                continue
            # the default bridge stays, as docker0 does, unless it was only borrowed
            if net.user_defined or not bridge_claim.created:
                await asyncio.to_thread(br.release_bridge, net.bridge, bridge_claim)
        for handle in ctx.netns.values():
            handle.close()
        ctx.netns.clear()


__all__ = ["claim", "load", "close"]
