"""Networks and container networking as the API shows them.

``GET /networks`` and ``/networks/{id}`` (:func:`views`, :func:`view`, with the containers
attached to each network) and a container's ``NetworkSettings``: live
(:func:`render`, from its sandbox) or while it does not run (:func:`inactive_settings`,
from what it asked for). Read-only: nothing here changes the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidParameter, NotFound
from runtime.filters import Filters
from runtime.network.context import NetworkContext
from runtime.network.contract import SandboxRequest, needs_netns_setup
from runtime.network.model import Network, Sandbox
from runtime.network.portmap import exposed_keys, render_ports
from runtime.network.sandboxes import endpoint_settings, name_matches, requested, settings_shape

LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})


@dataclass(frozen=True, slots=True)
class AttachedContainer:
    """A container endpoint as network inspect lists it."""

    container_id: str
    name: str
    endpoint_id: str
    mac: str
    ipv4: str  # "10.0.0.2/24" or ""
    ipv6: str = ""  # "fd42::2/64" or ""


@dataclass(frozen=True, slots=True)
class NetworkView:
    """A network with the containers attached to it, as ``GET /networks/{id}`` shows it."""

    network: Network
    containers: tuple[AttachedContainer, ...]


def attached(ctx: NetworkContext, net: Network) -> tuple[AttachedContainer, ...]:
    """The endpoints of running containers on ``net``."""
    result = []
    for sb in ctx.sandboxes.values():
        ep = sb.endpoints.get(net.id)
        if ep is not None:
            ipv4 = f"{ep.ip}/{ep.prefixlen}" if ep.ip else ""
            ipv6 = f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else ""
            result.append(AttachedContainer(sb.container_id, sb.request.name, ep.endpoint_id, ep.mac, ipv4, ipv6))
    return tuple(result)


def view(ctx: NetworkContext, ref: str, scope: str = "") -> NetworkView:
    """One network by reference (404 when ``scope`` is given and differs)."""
    net = ctx.find(ref)
    if scope and scope != net.scope:
        raise NotFound(f"network {ref} not found")
    return NetworkView(net, attached(ctx, net))


def views(ctx: NetworkContext, filters: Filters) -> list[NetworkView]:
    """``GET /networks``: the networks the filters select, oldest first."""
    filters.validate(LIST_FILTERS)
    values = filters.values
    dangling = None
    if "dangling" in values:
        if len(values["dangling"]) > 1:
            raise InvalidParameter('got more than one value for filter key "dangling"')
        word = values["dangling"][0]
        if word not in ("0", "1", "true", "false"):
            raise InvalidParameter(
                'invalid value for filter \'dangling\', must be "true" (or "1"), or "false" (or "0")'
            )
        dangling = word in ("1", "true")
    for kind in values.get("type", ()):
        if kind not in ("builtin", "custom"):
            raise InvalidParameter(f"invalid filter: 'type'='{kind}'")
    result = []
    for net in sorted(ctx.networks.values(), key=lambda n: n.created):
        if not filters.exact_match("driver", net.driver):
            continue
        if "name" in values and not name_matches(values["name"], net.name):
            continue
        if "id" in values and not name_matches(values["id"], net.id):
            continue
        if not filters.match_labels(net.labels):
            continue
        if not filters.exact_match("scope", net.scope):
            continue
        on_net = attached(ctx, net)
        if dangling is not None:
            in_use = net.predefined or bool(on_net)
            if dangling == in_use:
                continue
        if "type" in values:
            kinds = set(values["type"])
            if not (("builtin" in kinds and net.predefined) or ("custom" in kinds and not net.predefined)):
                continue
        result.append(NetworkView(net, on_net))
    return result


def inactive_settings(ctx: NetworkContext, request: SandboxRequest) -> dict[str, Any]:
    """``NetworkSettings`` of a container that does not run: the networks it asked for."""
    networks: dict[str, dict[str, Any]] = {}
    for ref, cfg in requested(request):
        try:
            net = ctx.find(ref)
        except (NotFound, InvalidParameter):
            continue
        entry = endpoint_settings(net, None, cfg)
        networks[net.name] = entry
    return settings_shape("", "", networks, {}, None)


def render(ctx: NetworkContext, sandbox: Sandbox) -> dict[str, Any]:
    """The live ``NetworkSettings`` of a running container."""
    networks: dict[str, dict[str, Any]] = {}
    default_entry = None
    for ep in sandbox.endpoints.values():
        net = ctx.networks.get(ep.network_id)
        if net is None:
            continue
        entry = endpoint_settings(net, ep, ep.config)
        networks[net.name] = entry
        if net.name == "bridge":
            default_entry = entry
    req = sandbox.request
    if req.network_mode == "host" or req.network_mode.startswith("container:"):
        ports: dict[str, Any] = {}
    else:
        keys = exposed_keys(req.exposed_ports, req.port_bindings)
        ports = render_ports(keys, ctx.bindings.get(sandbox.container_id, ()))
    key = f"/proc/{sandbox.pid}/ns/net" if sandbox.pid and needs_netns_setup(req.network_mode) else ""
    if req.network_mode == "host":
        key = "/proc/1/ns/net"
    sid = sandbox.sandbox_id if not req.network_mode.startswith("container:") else ""
    return settings_shape(sid, key, networks, ports, default_entry)


__all__ = ["LIST_FILTERS", "AttachedContainer", "NetworkView", "attached", "view", "views",
           "inactive_settings", "render"]
