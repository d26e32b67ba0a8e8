"""Create, remove and prune networks (``POST /networks/create``, ``DELETE /networks/{id}``,
``POST /networks/prune``), as moby's ``daemon/network.go``.

Only the ``bridge`` driver and the ``default`` IPAM driver exist here; a network gets one
IPv4 subnet (and, with IPv6, one IPv6 subnet) and its own bridge, claimed (created or
adopted) before the network is recorded and released when it is removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, field

from runtime.errors import Conflict, Forbidden, InvalidParameter, NotFound, NotImplementedFeature
from runtime.filters import Filters
from runtime.network import bridge as br
from runtime.network.context import NetworkContext, new_id
from runtime.network.ipam import PoolConfig, validate_ipam
from runtime.network.ipam6 import ERR_NO_IPV6, host_has_ipv6, random_ula
from runtime.network.lifecycle import claim
from runtime.network.model import OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQUERADE, Network, is_predefined
from runtime.network.views import attached
from runtime.timefmt import parse_timestamp, rfc3339_nano

log = logging.getLogger(__name__)

PRUNE_FILTERS = frozenset({"label", "label!", "until"})


@dataclass(frozen=True, slots=True)
class NetworkCreate:
    """``POST /networks/create`` as the router parsed it."""

    name: str
    driver: str = "bridge"
    scope: str = ""
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_only: bool = False
    config_from: str = ""
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None
    ipam_config: tuple[PoolConfig, ...] = ()
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


async def create(ctx: NetworkContext, req: NetworkCreate) -> str:
    """Validate, allocate the pools, claim the bridge, record the network; its ID."""
    if is_predefined(req.name):
        raise Forbidden(f"operation is not permitted on predefined {req.name} network ")
    driver = req.driver or "bridge"
    if driver in ("host", "null"):
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver != "bridge":
        raise NotFound(f'plugin "{driver}" not found')
    if (req.ipam_driver or "default") != "default":
        raise NotFound(f'plugin "{req.ipam_driver}" not found')
    enable_ipv6 = bool(req.enable_ipv6) or req.options.get("com.docker.network.enable_ipv6", "") in ("1", "true")
    validate_ipam(req.ipam_config, enable_ipv6)
    if enable_ipv6 and not host_has_ipv6():
        raise InvalidParameter(ERR_NO_IPV6)
    if req.enable_ipv4 is False:
        raise NotImplementedFeature("IPv6-only networks are not supported by pydockerd")
    if not req.name.strip():
        raise InvalidParameter("invalid name: name is empty")
    v4 = [c for c in req.ipam_config if ipaddress.ip_network(c.subnet, strict=False).version == 4]
    if len(v4) > 1:
        raise NotImplementedFeature("pydockerd supports one IPv4 subnet per network")
    v6 = [c for c in req.ipam_config if ipaddress.ip_network(c.subnet, strict=False).version == 6]
    if len(v6) > 1:
        raise NotImplementedFeature("pydockerd supports one IPv6 subnet per network")
    for opt in (OPT_ICC, OPT_MASQUERADE):
        if opt in req.options and req.options[opt].strip().lower() not in ("1", "0", "t", "f", "true", "false"):
            raise InvalidParameter(f"invalid value for {opt}: {req.options[opt]}")
    async with ctx.lock:
        if any(n.name == req.name for n in ctx.networks.values()):
            raise Conflict(f"network with name {req.name} already exists")
        net_id = new_id()
        bridge_name = req.options.get(OPT_BRIDGE_NAME) or f"br-{net_id[:12]}"
        if len(bridge_name) > 15:
            raise InvalidParameter(f"bridge name {bridge_name} is too long")
        if any(n.bridge == bridge_name for n in ctx.networks.values() if n.is_bridge):
            raise Conflict(f"bridge name {bridge_name} already in use by another network")
        pool = ctx.ipam.request_pool(net_id, v4[0] if v4 else None)
        pool6 = None
        if enable_ipv6:
            try:
                pool6 = ctx.ipam6.request_pool(net_id, v6[0].subnet if v6 else random_ula(),
                                               v6[0].gateway if v6 else "")
            except BaseException:
                ctx.ipam.release_pool(net_id)
                raise
        net = Network(
            id=net_id, name=req.name, driver=driver, created=rfc3339_nano(time.time_ns()),
            internal=req.internal, attachable=req.attachable, ingress=req.ingress,
            config_only=req.config_only, config_from=req.config_from,
            ipam_driver=req.ipam_driver or "default",
            ipam_options=req.ipam_options, ipam_config=list(req.ipam_config),
            options=dict(req.options), labels=dict(req.labels),
            subnet=str(pool.subnet), ip_range=str(pool.ip_range or ""), gateway=str(pool.gateway or ""),
            bridge=bridge_name, enable_ipv6=enable_ipv6,
            subnet6=str(pool6.subnet) if pool6 else "", gateway6=str(pool6.gateway) if pool6 else "",
        )
        try:
            net.bridge_claim = await asyncio.to_thread(claim, net)
            ctx.networks[net_id] = net
            ctx.save_network(net)
            await ctx.sync_firewall()
        except BaseException:
            ctx.networks.pop(net_id, None)
            ctx.ipam.release_pool(net_id)
            ctx.ipam6.release_pool(net_id)
            ctx.drop_network_file(net_id)
            if net.bridge_claim is not None:
                await asyncio.to_thread(br.release_bridge, bridge_name, net.bridge_claim)
            raise
    ctx.event(net, "create")
    return net_id


async def remove(ctx: NetworkContext, ref: str) -> None:
    """Remove a user network without endpoints (its bridge goes if pydockerd made it)."""
    net = ctx.find(ref)
    if net.predefined:
        raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
    async with ctx.lock:
        on_net = attached(ctx, net)
        if on_net:
            eps = ", ".join(f'name:"{a.name}" id:"{a.endpoint_id[:12]}"' for a in on_net)
            raise Forbidden(f"error while removing network: network {net.name} has active endpoints ({eps})")
        ctx.networks.pop(net.id, None)
        ctx.ipam.release_pool(net.id)
        ctx.ipam6.release_pool(net.id)
        ctx.drop_network_file(net.id)
        if net.bridge_claim is not None:
            await asyncio.to_thread(br.release_bridge, net.bridge, net.bridge_claim)
        await ctx.sync_firewall()
    ctx.event(net, "destroy")


async def prune(ctx: NetworkContext, filters: Filters) -> list[str]:
    """Remove the unused user networks the filters select; their names."""
    filters.validate(PRUNE_FILTERS)
    until = filters.prune_until()
    deleted = []
    for net in sorted(list(ctx.networks.values()), key=lambda n: n.created):
        if net.predefined or net.config_only:
            continue
        if until is not None and _created_ns(net) > until:
            continue
        if not filters.match_label_filters(net.labels):
            continue
        if attached(ctx, net):
            continue
        try:
            await remove(ctx, net.id)
        except Exception as exc:
            log.warning("could not remove local network %s: %s", net.name, exc)
            continue
        deleted.append(net.name)
    ctx.events.publish("network", "prune", "", {"reclaimed": "0"})
    return deleted


def _created_ns(net: Network) -> int:
    try:
        return parse_timestamp(net.created)
    except ValueError:
        return 0


__all__ = ["PRUNE_FILTERS", "NetworkCreate", "create", "remove", "prune"]
