"""Wire shapes of networks (``Network`` / ``NetworkSummary`` of the v1.50 spec)."""

from __future__ import annotations

from typing import Any

from runtime.network.ipam import PoolConfig
from runtime.network.service import NetworkView


def _ipam_entry(cfg: PoolConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {"Subnet": cfg.subnet}
    if cfg.ip_range:
        entry["IPRange"] = cfg.ip_range
    if cfg.gateway:
        entry["Gateway"] = cfg.gateway
    if cfg.aux_addresses:
        entry["AuxiliaryAddresses"] = dict(cfg.aux_addresses)
    return entry


def render_network(view: NetworkView, detailed: bool) -> dict[str, Any]:
    """dockerd's buildNetworkResource; ``Containers`` only when ``detailed``."""
    net = view.network
    config: list[dict[str, Any]] | None = None
    if net.is_bridge:
        given4 = [c for c in net.ipam_config if c.subnet and ":" not in c.subnet]
        given6 = [c for c in net.ipam_config if c.subnet and ":" in c.subnet]
        if given4:
            config = [_ipam_entry(c) for c in given4]
        else:
            entry: dict[str, Any] = {"Subnet": net.subnet}
            if net.gateway:
                entry["Gateway"] = net.gateway
            config = [entry]
        if given6:
            config += [_ipam_entry(c) for c in given6]
        elif net.subnet6:
            config.append({"Subnet": net.subnet6, "Gateway": net.gateway6})
    containers: dict[str, Any] = {}
    if detailed:
        for c in view.containers:
            containers[c.container_id] = {
                "Name": c.name, "EndpointID": c.endpoint_id, "MacAddress": c.mac,
                "IPv4Address": c.ipv4, "IPv6Address": c.ipv6,
            }
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": net.scope,
        "Driver": net.driver,
        "EnableIPv4": net.enable_ipv4,
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": net.ipam_driver, "Options": net.ipam_options, "Config": config},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": net.ingress,
        "ConfigFrom": {"Network": net.config_from},
        "ConfigOnly": net.config_only,
        "Containers": containers,
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }


__all__ = ["render_network"]
