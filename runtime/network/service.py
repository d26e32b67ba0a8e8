"""NetworkService: networks (``/networks``) and the networking of running containers.

State on disk, under ``<data-root>/network/``:

* ``networks/<id>.json`` - one record per network (the predefined ``bridge``, ``host``
  and ``none`` included), with the subnet IPAM handed out;
* ``sandboxes/<container-id>.json`` - the networking of a running container, written
  *before* its veths exist and removed after they are gone.

At :meth:`NetworkService.open` the IPAM pools are re-requested from the network
records, bridges are (re)claimed, and every sandbox record is checked against the
kernel: if its container still lives (same pid, same netns inode) its addresses, DNS
listeners and published ports are restored, otherwise its veths are deleted and its
addresses stay free. Firewall rules are then re-rendered from that state. A clean
:meth:`close` removes every firewall rule and releases every user-network bridge with no
live endpoint (with live-restore it keeps them for the containers left running). So a
crash leaks nothing that the next start does not take back.

Ownership: a network's :class:`BridgeClaim` records whether pydockerd created its bridge;
only such bridges are ever deleted, an adopted one is given back as it was found. Host
veths are deleted only when they are veths plugged into the network's bridge, and work
inside a container's namespace goes through the :class:`NetnsHandle` taken when it
started, never through a pid that may since name a host process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from runtime.config import DaemonConfig
from runtime.errors import (
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    NotImplementedFeature,
    SystemError_,
)
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.network import bridge as br
from runtime.network.contract import (
    DEFAULT_MODES,
    PRIMARY_LEFT,
    ContainerDirectory,
    EndpointConfig,
    SandboxRequest,
    needs_netns_setup,
)
from runtime.network.dns import EmbeddedDns, make_sockets
from runtime.network.etcfiles import (
    ExtServer,
    container_resolv_conf,
    hosts_content,
    parse_extra_hosts,
)
from runtime.network.firewall import BridgeRules, Firewall, PortRule, daemon_tag
from runtime.network.hostnet import reserved_networks
from runtime.network.ipam import Ipam, NoAvailableAddresses, PoolConfig, validate_ipam
from runtime.network.ipam6 import ERR_NO_IPV6, Ipam6, host_has_ipv6, random_ula
from runtime.network.model import (
    OPT_BRIDGE_NAME,
    OPT_DEFAULT_BRIDGE,
    OPT_HOST_BINDING,
    OPT_ICC,
    OPT_MASQUERADE,
    OPT_MTU,
    BridgeClaim,
    Endpoint,
    Network,
    PortRecord,
    Sandbox,
    is_predefined,
)
from runtime.network.links import link_env
from runtime.network.netns import NetnsGone, NetnsHandle, run_in_netns
from runtime.network.portmap import (
    Binding,
    PortAllocator,
    PortRequest,
    close_all,
    exposed_keys,
    host_ipv6_listenable,
    port_requests,
    publish,
    render_ports,
)
from runtime.network.sandboxes import (
    ERR_CONNECT_HOST,
    ERR_DISCONNECT_HOST,
    ERR_NO_NETWORK,
    ERR_SHARED,
    check_endpoint,
    dns_names,
    endpoint_settings,
    link_local_cidrs,
    mode_network,
    name_matches,
    pick_gateway,
    requested,
    resolve_ip,
    resolve_name,
    settings_shape,
)
from runtime.statefile import read_json, write_json_atomic
from runtime.ports import validate_port_bindings
from runtime.timefmt import parse_timestamp, rfc3339_nano

log = logging.getLogger(__name__)

LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
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
    network: Network
    containers: tuple[AttachedContainer, ...]


def _new_id() -> str:
    return secrets.token_hex(32)


def _write_in_place(path: str, content: str) -> None:
    """Overwrite a bind-mounted file without replacing its inode."""
    if not path:
        return
    with open(path, "w") as f:
        f.write(content)


class NetworkService:
    """Networks and container networking for one daemon. Satisfies
    :class:`runtime.network.contract.ContainerNetworking` and the DNS backend."""

    def __init__(
        self,
        config: DaemonConfig,
        events: EventBus,
        *,
        firewall: Firewall | None = None,
        firewall6: Firewall | None = None,
        reserved: Callable[[], Iterable[IPv4Network]] = reserved_networks,
        host_resolv_conf: Path = Path("/etc/resolv.conf"),
        host_hosts: Path = Path("/etc/hosts"),
    ) -> None:
        self.config = config
        self.events = events
        self._root = config.data_root / "network"
        self._networks: dict[str, Network] = {}
        self._sandboxes: dict[str, Sandbox] = {}
        self._netns: dict[str, NetnsHandle] = {}  # by container ID, while it runs
        self._closed = False
        self._bindings: dict[str, list[Binding]] = {}
        self._ext_servers: dict[str, list[ExtServer]] = {}
        self._ipv6_in: dict[str, bool] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._setup_error: str | None = None
        self._ipam = Ipam(reserved=reserved)
        self._ipam6 = Ipam6()
        self._ports = PortAllocator()
        self._dns = EmbeddedDns(self)
        self.firewall = firewall if firewall is not None else Firewall(daemon_tag(config.data_root))
        # ip6tables: set up with the first IPv6 network; a failure leaves IPv6 without NAT
        self.firewall6 = firewall6 if firewall6 is not None else Firewall(daemon_tag(config.data_root), family=6)
        self._fw6_state = ""  # "" not set up, "ready", or the setup error
        self._lock = asyncio.Lock()
        self._directory: ContainerDirectory | None = None
        self._host_resolv = host_resolv_conf
        self._host_hosts = host_hosts
        self._ipv6_host = host_ipv6_listenable()

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(cls, config: DaemonConfig, events: EventBus, **kwargs: Any) -> NetworkService:
        service = cls(config, events, **kwargs)
        await service._load()
        return service

    async def _load(self) -> None:
        for sub in ("networks", "sandboxes"):
            (self._root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self._root, 0o700)
        for path in sorted((self._root / "networks").glob("*.json")):
            try:
                net = Network.from_json(read_json(path))
            except (OSError, ValueError, TypeError, KeyError):
                log.warning("skipping unreadable network record %s", path)
                continue
            self._networks[net.id] = net
        self._ensure_predefined()
        for net in self._networks.values():
            if net.is_bridge:
                try:
                    self._request_pool(net)
                except Exception as exc:  # keep the daemon up; the network just cannot be used
                    log.error("network %s: cannot restore its pool %s: %s", net.name, net.subnet, exc)
        try:
            br.enable_ip_forward()
            await self.firewall.setup()
            await self._claim_bridge(self.default_bridge)
        except Exception as exc:
            # keep the daemon (and host/none networking) usable where the host refuses
            # bridges or iptables (no CAP_NET_ADMIN...); bridge attachments report why
            self._setup_error = str(exc)
            log.error("bridge networking is unavailable: %s", exc)
        if self._setup_error is None:
            for net in self._networks.values():
                if net.user_defined:
                    try:
                        await self._claim_bridge(net)
                    except Exception as exc:  # that network alone is unusable
                        log.error("network %s: cannot set up bridge %s: %s", net.name, net.bridge, exc)
        await self._restore_sandboxes()
        if self._setup_error is None:
            await self._sync_firewall()

    async def _claim_bridge(self, net: Network) -> None:
        net.bridge_claim = await asyncio.to_thread(_claim, net)
        self._save_network(net)

    def _ensure_predefined(self) -> None:
        by_name = {n.name: n for n in self._networks.values()}
        bip = ipaddress.IPv4Interface(self.config.bip)
        bridge_opts = {
            OPT_DEFAULT_BRIDGE: "true", OPT_ICC: "true", OPT_MASQUERADE: "true",
            OPT_HOST_BINDING: "0.0.0.0", OPT_BRIDGE_NAME: self.config.bridge, OPT_MTU: "1500",
        }
        now = rfc3339_nano(time.time_ns())
        subnet6 = gateway6 = ""
        if self.config.ipv6:
            if not host_has_ipv6():
                log.error("--ipv6: %s; the default bridge stays IPv4 only", ERR_NO_IPV6)
            else:
                previous = by_name.get("bridge")
                kept = previous.subnet6 if previous is not None and previous.subnet6 else random_ula()
                six = ipaddress.IPv6Network(self.config.fixed_cidr_v6 or kept)
                subnet6, gateway6 = str(six), str(six.network_address + 1)
        wanted: dict[str, dict[str, Any]] = {
            "bridge": dict(driver="bridge", options=bridge_opts, subnet=str(bip.network), gateway=str(bip.ip),
                           bridge=self.config.bridge, ip_range="", enable_ipv6=bool(subnet6),
                           subnet6=subnet6, gateway6=gateway6),
            "host": dict(driver="host"),
            "none": dict(driver="null"),
        }
        for name, attrs in wanted.items():
            net = by_name.get(name)
            if net is None:
                net = Network(id=_new_id(), name=name, driver=str(attrs["driver"]), created=now)
            elif attrs.get("bridge", net.bridge) != net.bridge:
                net.bridge_claim = None  # another interface now: what was done to the old one is moot
            for key, value in attrs.items():
                setattr(net, key, value)
            self._networks[net.id] = net
            self._save_network(net)

    def _request_pool(self, net: Network) -> None:
        if net.name == "bridge":
            self._ipam.request_pool(net.id, PoolConfig(subnet=net.subnet), gateway_ip=net.gateway)
            if net.subnet6:
                self._ipam6.request_pool(net.id, net.subnet6, net.gateway6)
            return
        cfg = next((c for c in net.ipam_config if c.subnet and ":" not in c.subnet), PoolConfig())
        if net.subnet6:
            self._ipam6.request_pool(net.id, net.subnet6, net.gateway6)
        self._ipam.request_pool(
            net.id, PoolConfig(subnet=net.subnet, ip_range=net.ip_range, gateway=net.gateway,
                               aux_addresses=cfg.aux_addresses),
        )

    async def _restore_sandboxes(self) -> None:
        for path in sorted((self._root / "sandboxes").glob("*.json")):
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
                    await self._revive(sandbox, handle)
                    continue
                except Exception as exc:
                    handle.close()
                    self._netns.pop(sandbox.container_id, None)
                    log.warning("container %s: cannot restore networking: %s", sandbox.container_id[:12], exc)
            await asyncio.to_thread(_delete_veths, self._host_veths(sandbox))
            path.unlink(missing_ok=True)

    async def _revive(self, sandbox: Sandbox, handle: NetnsHandle) -> None:
        self._netns[sandbox.container_id] = handle
        for ep in sandbox.endpoints.values():
            if ep.ip and ep.network_id in self._networks:
                with contextlib.suppress(Exception):
                    self._ipam.request_address(ep.network_id, ep.ip)
                if ep.ip6:
                    with contextlib.suppress(Exception):
                        self._ipam6.request_address(ep.network_id, ep.ip6)
        self._sandboxes[sandbox.container_id] = sandbox
        if sandbox.dns and sandbox.pid is not None:
            host_text = self._read_host_resolv()
            req = sandbox.request
            _, ext = container_resolv_conf(host_text, "internal", req.dns, req.dns_search, req.dns_options)
            self._ext_servers[sandbox.container_id] = ext
            udp, tcp = await run_in_netns(handle, make_sockets)
            await self._dns.serve(sandbox.container_id, udp, tcp)
        bindings: list[Binding] = []
        for rec in sandbox.ports:
            with contextlib.suppress(Exception):
                bindings.extend(await publish(
                    [PortRequest(rec.container_port, rec.proto, rec.host_ip, rec.host_port, rec.host_port)],
                    rec.container_ip, self._ports, False,
                ))
        self._bindings[sandbox.container_id] = bindings

    async def close(self, keep_running: bool = False) -> None:
        """Clean stop: stop DNS listeners and proxies, remove every firewall rule, and
        delete user-network bridges that no running container uses.

        ``keep_running`` (live-restore): containers outlive the daemon, so firewall
        rules, bridges, veths and sandbox records stay; only what lives in this process
        (embedded DNS, userland proxies) stops, and :meth:`open` re-creates it."""
        async with self._lock:
            self._closed = True
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            await self._dns.close()
            for cid, bindings in list(self._bindings.items()):
                await close_all(bindings, self._ports)
            self._bindings.clear()
            if keep_running:
                return
            if self._setup_error is None:
                await self.firewall.teardown()
                if self._fw6_state == "ready":
                    await self.firewall6.teardown()
            used = {ep.network_id for sb in self._sandboxes.values() for ep in sb.endpoints.values()}
            for net in self._networks.values():
                claim = net.bridge_claim
                if claim is None or net.id in used:
                    continue
                # the default bridge stays, as docker0 does, unless it was only borrowed
                if net.user_defined or not claim.created:
                    await asyncio.to_thread(br.release_bridge, net.bridge, claim)
            for handle in self._netns.values():
                handle.close()
            self._netns.clear()

    # -- persistence -----------------------------------------------------------------

    def _save_network(self, net: Network) -> None:
        write_json_atomic(self._root / "networks" / f"{net.id}.json", net.to_json())

    def _save_sandbox(self, sandbox: Sandbox) -> None:
        write_json_atomic(self._root / "sandboxes" / f"{sandbox.container_id}.json", sandbox.to_json())

    def _drop_sandbox_file(self, container_id: str) -> None:
        (self._root / "sandboxes" / f"{container_id}.json").unlink(missing_ok=True)

    def _read_host_resolv(self) -> str:
        try:
            return self._host_resolv.read_text()
        except OSError:
            return ""

    # -- lookups ---------------------------------------------------------------------

    def find(self, ref: str) -> Network:
        """dockerd's FindNetwork: full ID, then exact name, then unique ID prefix."""
        if ref in self._networks:
            return self._networks[ref]
        by_name = [n for n in self._networks.values() if n.name == ref]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_name)} matches found on name)")
        by_prefix = [n for n in self._networks.values() if ref and n.id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_prefix)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    @property
    def default_bridge(self) -> Network:
        return next(n for n in self._networks.values() if n.name == "bridge")

    def _request_ip6(self, net: Network, cfg: EndpointConfig) -> str:
        """The endpoint's IPv6 address on an IPv6 network ("" otherwise)."""
        if not net.subnet6 or not self._ipam6.has_pool(net.id):
            return ""
        try:
            return str(self._ipam6.request_address(net.id, cfg.ipv6_address))
        except NoAvailableAddresses:
            raise SystemError_(
                f"no available IPv6 addresses on this network's address pools: {net.name} ({net.id})"
            ) from None

    def host_gateway_ips(self) -> list[str]:
        return [self.default_bridge.gateway]

    def _attached(self, net: Network) -> tuple[AttachedContainer, ...]:
        result = []
        for sb in self._sandboxes.values():
            ep = sb.endpoints.get(net.id)
            if ep is not None:
                ipv4 = f"{ep.ip}/{ep.prefixlen}" if ep.ip else ""
                ipv6 = f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else ""
                result.append(AttachedContainer(sb.container_id, sb.request.name, ep.endpoint_id, ep.mac, ipv4, ipv6))
        return tuple(result)

    def view(self, ref: str, scope: str = "") -> NetworkView:
        net = self.find(ref)
        if scope and scope != net.scope:
            raise NotFound(f"network {ref} not found")
        return NetworkView(net, self._attached(net))

    def views(self, filters: Filters) -> list[NetworkView]:
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
        for net in sorted(self._networks.values(), key=lambda n: n.created):
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
            attached = self._attached(net)
            if dangling is not None:
                in_use = net.predefined or bool(attached)
                if dangling == in_use:
                    continue
            if "type" in values:
                kinds = set(values["type"])
                if not (("builtin" in kinds and net.predefined) or ("custom" in kinds and not net.predefined)):
                    continue
            result.append(NetworkView(net, attached))
        return result

    # -- networks --------------------------------------------------------------------

    async def create(self, req: NetworkCreate) -> str:
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
        async with self._lock:
            if any(n.name == req.name for n in self._networks.values()):
                raise Conflict(f"network with name {req.name} already exists")
            net_id = _new_id()
            bridge_name = req.options.get(OPT_BRIDGE_NAME) or f"br-{net_id[:12]}"
            if len(bridge_name) > 15:
                raise InvalidParameter(f"bridge name {bridge_name} is too long")
            if any(n.bridge == bridge_name for n in self._networks.values() if n.is_bridge):
                raise Conflict(f"bridge name {bridge_name} already in use by another network")
            pool = self._ipam.request_pool(net_id, v4[0] if v4 else None)
            pool6 = None
            if enable_ipv6:
                try:
                    pool6 = self._ipam6.request_pool(net_id, v6[0].subnet if v6 else random_ula(),
                                                     v6[0].gateway if v6 else "")
                except BaseException:
                    self._ipam.release_pool(net_id)
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
                net.bridge_claim = await asyncio.to_thread(_claim, net)
                self._networks[net_id] = net
                self._save_network(net)
                await self._sync_firewall()
            except BaseException:
                self._networks.pop(net_id, None)
                self._ipam.release_pool(net_id)
                self._ipam6.release_pool(net_id)
                (self._root / "networks" / f"{net_id}.json").unlink(missing_ok=True)
                if net.bridge_claim is not None:
                    await asyncio.to_thread(br.release_bridge, bridge_name, net.bridge_claim)
                raise
        self._event(net, "create")
        return net_id

    async def remove(self, ref: str) -> None:
        net = self.find(ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            attached = self._attached(net)
            if attached:
                eps = ", ".join(f'name:"{a.name}" id:"{a.endpoint_id[:12]}"' for a in attached)
                raise Forbidden(f"error while removing network: network {net.name} has active endpoints ({eps})")
            self._networks.pop(net.id, None)
            self._ipam.release_pool(net.id)
            self._ipam6.release_pool(net.id)
            (self._root / "networks" / f"{net.id}.json").unlink(missing_ok=True)
            if net.bridge_claim is not None:
                await asyncio.to_thread(br.release_bridge, net.bridge, net.bridge_claim)
            await self._sync_firewall()
        self._event(net, "destroy")

    async def prune(self, filters: Filters) -> list[str]:
        filters.validate(PRUNE_FILTERS)
        until = filters.prune_until()
        deleted = []
        for net in sorted(list(self._networks.values()), key=lambda n: n.created):
            if net.predefined or net.config_only:
                continue
            if until is not None and _created_ns(net) > until:
                continue
            if not filters.match_label_filters(net.labels):
                continue
            if self._attached(net):
                continue
            try:
                await self.remove(net.id)
            except Exception as exc:
                log.warning("could not remove local network %s: %s", net.name, exc)
                continue
            deleted.append(net.name)
        self.events.publish("network", "prune", "", {"reclaimed": "0"})
        return deleted

    def _event(self, net: Network, action: str, **extra: str) -> None:
        self.events.publish("network", action, net.id, {**extra, "name": net.name, "type": net.driver})

    async def _sync_firewall(self) -> None:
        # after a clean stop removed every rule, a late detach must not put them back
        if self._setup_error is not None or self._closed:
            return
        rules = [
            BridgeRules(n.bridge, n.subnet, n.internal, n.masquerade, n.icc)
            for n in sorted(self._networks.values(), key=lambda n: n.created) if n.is_bridge
        ]
        ports = [
            PortRule(p.proto, p.host_ip, p.host_port, p.container_ip, p.container_port, p.bridge)
            for sb in self._sandboxes.values() for p in sb.ports
            if ":" not in p.host_ip and not p.host_ip.startswith("127.")
        ]
        await self.firewall.sync(rules, ports)
        rules6 = [
            BridgeRules(n.bridge, n.subnet6, n.internal, n.masquerade, n.icc)
            for n in sorted(self._networks.values(), key=lambda n: n.created) if n.is_bridge and n.subnet6
        ]
        if rules6 and not self._fw6_state:
            try:
                await self.firewall6.setup()
                self._fw6_state = "ready"
            except SystemError_ as exc:
                self._fw6_state = str(exc)
                log.warning("ip6tables unavailable, IPv6 networks get no NAT or isolation rules: %s", exc)
        if self._fw6_state == "ready":
            await self.firewall6.sync(rules6, [])

    # -- container hooks (ContainerNetworking) ----------------------------------------

    def _resolve_requested(self, request: SandboxRequest) -> list[tuple[Network, EndpointConfig]]:
        result: list[tuple[Network, EndpointConfig]] = []
        for ref, cfg in requested(request):
            net = self.find(ref)
            index = next((i for i, (n, _) in enumerate(result) if n.id == net.id), None)
            if index is None:
                result.append((net, cfg))
            elif cfg != EndpointConfig():  # the same network spelled twice: the entry with settings wins
                result[index] = (net, cfg)
        return result

    def _names_network(self, key: str, net: Network) -> bool:
        """Whether an EndpointsConfig key (name, ID, ID prefix, ``default``) means ``net``."""
        if key in (net.name, net.id) or (key in DEFAULT_MODES and net.name == "bridge"):
            return True
        try:
            return bool(key) and key != PRIMARY_LEFT and self.find(key).id == net.id
        except (NotFound, InvalidParameter):
            return False

    def _is_primary(self, request: SandboxRequest, net: Network) -> bool:
        primary = mode_network(request.network_mode)
        return primary is not None and self._names_network(primary, net)

    async def validate_sandbox(self, request: SandboxRequest) -> list[str]:
        warnings: list[str] = []
        mode = request.network_mode
        if mode == "host":
            if request.port_bindings:
                warnings.append("Published ports are discarded when using host network mode")
        nets = self._resolve_requested(request)
        kinds = {n.driver for n, _ in nets}
        if len(nets) > 1 and ("null" in kinds or "host" in kinds):
            raise InvalidParameter(ERR_NO_NETWORK if "null" in kinds else ERR_SHARED)
        for net, cfg in nets:
            check_endpoint(net, cfg)
        validate_port_bindings(request.port_bindings)  # dockerd's texts, before the rest
        port_requests(request.exposed_ports, request.port_bindings, request.publish_all_ports)
        parse_extra_hosts(request.extra_hosts, self.host_gateway_ips())
        return warnings

    def inactive_settings(self, request: SandboxRequest) -> dict[str, Any]:
        networks: dict[str, dict[str, Any]] = {}
        for ref, cfg in requested(request):
            try:
                net = self.find(ref)
            except (NotFound, InvalidParameter):
                continue
            entry = endpoint_settings(net, None, cfg)
            networks[net.name] = entry
        return settings_shape("", "", networks, {}, None)

    def settings(self, container_id: str) -> dict[str, Any] | None:
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            return None
        return self._render(sandbox)

    def container_network_ids(self, container_id: str) -> list[str]:
        sandbox = self._sandboxes.get(container_id)
        return list(sandbox.endpoints) if sandbox else []

    def _render(self, sandbox: Sandbox) -> dict[str, Any]:
        networks: dict[str, dict[str, Any]] = {}
        default_entry = None
        for ep in sandbox.endpoints.values():
            net = self._networks.get(ep.network_id)
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
            ports = render_ports(keys, self._bindings.get(sandbox.container_id, ()))
        key = f"/proc/{sandbox.pid}/ns/net" if sandbox.pid and needs_netns_setup(req.network_mode) else ""
        if req.network_mode == "host":
            key = "/proc/1/ns/net"
        sid = sandbox.sandbox_id if not req.network_mode.startswith("container:") else ""
        return settings_shape(sid, key, networks, ports, default_entry)

    async def attach_container(self, request: SandboxRequest, pid: int | None) -> dict[str, Any]:
        async with self._lock:
            if request.container_id in self._sandboxes:
                await self._detach_locked(request.container_id)
            sandbox = Sandbox(request.container_id, _new_id(), request, pid)
            mode = request.network_mode
            if mode.startswith("container:"):
                return self._render(sandbox)
            nets = self._resolve_requested(request)
            try:
                if needs_netns_setup(mode):
                    if self._setup_error is not None:
                        raise SystemError_(f"bridge networking is unavailable: {self._setup_error}")
                    if pid is None:
                        raise InvalidParameter("a running container's pid is needed to set up its network")
                    # taken while the container is held before its command runs: its pid is its own
                    try:
                        handle = NetnsHandle.of_pid(pid)
                    except NetnsGone as exc:
                        raise SystemError_(f"container {request.container_id[:12]} exited before its network was set up: {exc}") from None
                    self._netns[request.container_id] = handle
                    sandbox.netns_inode = handle.inode
                    await self._attach_bridges(sandbox, nets, handle)
                else:
                    for net, cfg in nets:
                        sandbox.endpoints[net.id] = Endpoint(net.id, _new_id(), config=cfg)
                    self._sandboxes[request.container_id] = sandbox
                    self._save_sandbox(sandbox)
                await self._write_files(sandbox)
            except BaseException:
                await self._detach_locked(request.container_id, sandbox)
                raise
        for ep in sandbox.endpoints.values():
            joined = self._networks.get(ep.network_id)
            if joined is not None:
                self._event(joined, "connect", container=request.container_id)
        return self._render(sandbox)

    async def _attach_bridges(self, sandbox: Sandbox, nets: list[tuple[Network, EndpointConfig]],
                              handle: NetnsHandle) -> None:
        req = sandbox.request
        assert sandbox.pid is not None
        gateway_net = pick_gateway(nets)
        plans: list[br.VethPlan] = []
        for index, (net, cfg) in enumerate(nets):
            if not net.is_bridge:
                raise InvalidParameter(ERR_SHARED)
            try:
                ip = self._ipam.request_address(net.id, cfg.ipv4_address)
            except NoAvailableAddresses:
                raise SystemError_(
                    f"no available IPv4 addresses on this network's address pools: {net.name} ({net.id})"
                ) from None
            try:
                ip6 = self._request_ip6(net, cfg)
            except BaseException:
                self._ipam.release_address(net.id, ip)  # not in the sandbox yet: the cleanup misses it
                raise
            ep = Endpoint(
                network_id=net.id, endpoint_id=_new_id(), ifname=f"eth{index}",
                host_veth=br.random_veth_name(), ip=str(ip), prefixlen=net.prefixlen,
                gateway=net.gateway if net.id == gateway_net else "",
                mac=_mac(cfg) or br.mac_for_ipv4(ip),
                config=cfg, dns_names=dns_names(req, cfg) if net.user_defined else [],
                ip6=ip6, prefixlen6=_prefixlen6(net) if ip6 else 0,
                gateway6=net.gateway6 if ip6 and net.id == gateway_net else "",
            )
            sandbox.endpoints[net.id] = ep
            plans.append(br.VethPlan(ep.host_veth, ep.ifname, net.bridge, ep.mac, net.mtu,
                                     f"{ep.ip}/{ep.prefixlen}", net.gateway if net.id == gateway_net else "",
                                     link_local_cidrs(cfg), f"{ip6}/{ep.prefixlen6}" if ip6 else "",
                                     ep.gateway6))
        sandbox.dns = any(n.user_defined for n, _ in nets)
        self._sandboxes[sandbox.container_id] = sandbox
        self._save_sandbox(sandbox)  # before any veth exists: a crash from here on is reconciled
        want_dns = sandbox.dns

        def inside() -> tuple[bool, tuple[Any, Any] | None]:
            ipv6 = br.configure_peers(plans)
            return ipv6, make_sockets() if want_dns else None

        # one thread: veths created from the host namespace, then configured inside
        ipv6, sockets = await run_in_netns(handle, inside, before=lambda fd: br.create_veths(plans, fd))
        self._ipv6_in[sandbox.container_id] = ipv6
        if sockets is not None:
            await self._dns.serve(sandbox.container_id, *sockets)
        gw = next((ep for ep in sandbox.endpoints.values() if ep.gateway), None)
        if gw is not None:
            net = self._networks[gw.network_id]
            reqs = port_requests(req.exposed_ports, req.port_bindings, req.publish_all_ports)
            if net.host_binding_ip and net.host_binding_ip != "0.0.0.0":
                reqs = [r if r.host_ip else replace(r, host_ip=net.host_binding_ip) for r in reqs]
            if reqs:
                try:
                    bindings = await publish(reqs, gw.ip, self._ports, self._ipv6_host)
                except SystemError_ as exc:
                    raise SystemError_(
                        f"driver failed programming external connectivity on endpoint {req.name} "
                        f"({gw.endpoint_id}): {exc}"
                    ) from exc
                self._bindings[sandbox.container_id] = bindings
                sandbox.ports = [
                    PortRecord(b.proto, b.host_ip, b.host_port, b.container_ip, b.container_port, net.bridge)
                    for b in bindings
                ]
                self._save_sandbox(sandbox)
                await self._sync_firewall()

    async def _write_files(self, sandbox: Sandbox) -> None:
        req = sandbox.request
        mode = req.network_mode
        host_text = self._read_host_resolv()
        extra = parse_extra_hosts(req.extra_hosts, self.host_gateway_ips())
        if mode == "host":
            resolv, _ = container_resolv_conf(host_text, "host", req.dns, req.dns_search, req.dns_options)
            if extra:
                hosts = hosts_content(extra, [], req.hostname, req.domainname, ipv6=self._ipv6_host)
            else:
                try:
                    hosts = self._host_hosts.read_text()
                except OSError:
                    hosts = hosts_content([], [], req.hostname, req.domainname)
        else:
            links = self._link_records(req)
            own = [ep.ip for ep in sandbox.endpoints.values() if ep.ip]
            own += [ep.ip6 for ep in sandbox.endpoints.values() if ep.ip6]
            ipv6 = self._ipv6_in.get(sandbox.container_id, True)
            hosts = hosts_content(extra + links, own, req.hostname, req.domainname, ipv6=ipv6)
            resolv_mode = "internal" if sandbox.dns else ("legacy" if sandbox.endpoints and own else "none")
            resolv, ext = container_resolv_conf(host_text, resolv_mode, req.dns, req.dns_search, req.dns_options)
            self._ext_servers[sandbox.container_id] = ext
        await asyncio.to_thread(_write_in_place, req.hosts_path, hosts)
        await asyncio.to_thread(_write_in_place, req.resolv_conf_path, resolv)

    def _link_records(self, req: SandboxRequest) -> list[tuple[str, str]]:
        records: list[tuple[str, str]] = []
        bridge_id = self.default_bridge.id
        for link in req.links:
            target = self._sandboxes.get(link.target_id)
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

    def link_environment(self, req: SandboxRequest) -> list[str]:
        """The variables of the container's legacy links to running containers on the
        default bridge (``docker run --link name:alias``)."""
        env: list[str] = []
        bridge_id = self.default_bridge.id
        for link in req.links:
            target = self._sandboxes.get(link.target_id)
            ep = target.endpoints.get(bridge_id) if target is not None else None
            if target is None or ep is None or not ep.ip:
                continue
            ports = [*target.request.exposed_ports, *target.request.port_bindings]
            env += link_env(link.alias, f"/{req.name}/{link.alias}", ep.ip, ports, target.request.env)
        return env

    async def detach_container(self, container_id: str, only_pid: int | None = None) -> None:
        """``only_pid``: detach only if the sandbox still belongs to that process (an exit
        report may arrive after a restart already attached the container again)."""
        async with self._lock:
            sandbox = self._sandboxes.get(container_id)
            if sandbox is not None and only_pid is not None and sandbox.pid not in (None, only_pid):
                return
            if sandbox is None:
                self._drop_sandbox_file(container_id)
                return
            await self._detach_locked(container_id)
        for ep in sandbox.endpoints.values():
            net = self._networks.get(ep.network_id)
            if net is not None:
                self._event(net, "disconnect", container=container_id)

    async def _detach_locked(self, container_id: str, sandbox: Sandbox | None = None) -> None:
        sandbox = self._sandboxes.pop(container_id, None) or sandbox
        await self._dns.stop(container_id)
        had_ports = bool(self._bindings.get(container_id))
        await close_all(self._bindings.pop(container_id, []), self._ports)
        self._ext_servers.pop(container_id, None)
        self._ipv6_in.pop(container_id, None)
        handle = self._netns.pop(container_id, None)
        if handle is not None:
            handle.close()
        if sandbox is not None:
            veths = self._host_veths(sandbox)
            if veths:
                # deleting a veth waits for an RCU grace period (~20 ms); the kernel also
                # drops it by itself once the container's namespace dies, so nobody waits
                task = asyncio.get_running_loop().create_task(asyncio.to_thread(_delete_veths, veths))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            for ep in sandbox.endpoints.values():
                if ep.ip:
                    self._ipam.release_address(ep.network_id, ep.ip)
                self._ipam6.release_address(ep.network_id, ep.ip6)
            if had_ports or sandbox.ports:
                sandbox.ports = []
                await self._sync_firewall()
        self._drop_sandbox_file(container_id)

    def _host_veths(self, sandbox: Sandbox) -> list[tuple[str, str]]:
        """(host veth, bridge it must be plugged into) of each of the sandbox's endpoints."""
        return [
            (ep.host_veth, net.bridge) for ep in sandbox.endpoints.values()
            if ep.host_veth and (net := self._networks.get(ep.network_id)) is not None
        ]

    def _handle(self, sandbox: Sandbox) -> NetnsHandle:
        handle = self._netns.get(sandbox.container_id)
        if handle is None:
            raise SystemError_(f"container {sandbox.container_id[:12]} has no network namespace to configure")
        return handle

    async def rename_container(self, container_id: str, new_name: str) -> None:
        async with self._lock:
            sandbox = self._sandboxes.get(container_id)
            if sandbox is None:
                return
            sandbox.request = replace(sandbox.request, name=new_name.lstrip("/"))
            for ep in sandbox.endpoints.values():
                if ep.dns_names:
                    ep.dns_names = dns_names(sandbox.request, ep.config)
            self._save_sandbox(sandbox)

    # -- DnsBackend ------------------------------------------------------------------

    def resolve_name(self, container_id: str, name: str) -> tuple[list[str], bool]:
        asker = self._sandboxes.get(container_id)
        if asker is None:
            return [], False
        return resolve_name(self._sandboxes.values(), self._networks, asker, name)

    def resolve_ip(self, container_id: str, ip: str) -> str | None:
        asker = self._sandboxes.get(container_id)
        if asker is None:
            return None
        return resolve_ip(self._sandboxes.values(), self._networks, asker, ip)

    def upstreams(self, container_id: str) -> list[ExtServer]:
        return self._ext_servers.get(container_id, [])

    def proxy_dns(self, container_id: str) -> bool:
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            return False
        return any(
            (net := self._networks.get(ep.network_id)) is not None and not net.internal
            for ep in sandbox.endpoints.values()
        )

    # -- connect / disconnect (POST /networks/{id}/connect|disconnect) ----------------

    def set_container_directory(self, directory: ContainerDirectory) -> None:
        self._directory = directory

    def _need_directory(self) -> ContainerDirectory:
        if self._directory is None:
            raise NotImplementedFeature("connecting containers to networks is not available yet")
        return self._directory

    async def connect(self, net_ref: str, container_ref: str, config: EndpointConfig) -> None:
        directory = self._need_directory()
        net = self.find(net_ref)
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
        joined = [n.id for n, _ in self._resolve_requested(req)]
        sandbox = self._sandboxes.get(req.container_id)
        if net.id in joined:
            if target.running_pid is not None and sandbox is not None and net.id in sandbox.endpoints:
                raise Forbidden(f"endpoint with name {req.name} already exists in network {net.name}")
            return
        endpoints = {k: v for k, v in req.endpoints.items() if not self._names_network(k, net)}
        endpoints[net.name] = config
        settings = None
        if target.running_pid is not None and sandbox is not None:
            async with self._lock:
                await self._attach_one(sandbox, net, config)
            settings = self._render(sandbox)
            self._event(net, "connect", container=req.container_id)
        await directory.endpoints_changed(req.container_id, endpoints, settings)

    async def _attach_one(self, sandbox: Sandbox, net: Network, cfg: EndpointConfig) -> None:
        req = sandbox.request
        assert sandbox.pid is not None
        used = {ep.ifname for ep in sandbox.endpoints.values()}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        try:
            ip = self._ipam.request_address(net.id, cfg.ipv4_address)
        except NoAvailableAddresses:
            raise SystemError_(
                f"no available IPv4 addresses on this network's address pools: {net.name} ({net.id})"
            ) from None
        has_gateway = any(ep.gateway for ep in sandbox.endpoints.values())
        gateway = net.gateway if not has_gateway and not net.internal else ""
        try:
            ip6 = self._request_ip6(net, cfg)
        except BaseException:
            self._ipam.release_address(net.id, ip)
            raise
        ep = Endpoint(net.id, _new_id(), ifname, br.random_veth_name(), str(ip), net.prefixlen, gateway,
                      _mac(cfg) or br.mac_for_ipv4(ip), ip6, _prefixlen6(net) if ip6 else 0,
                      net.gateway6 if ip6 and gateway else "", cfg,
                      dns_names(req, cfg) if net.user_defined else [])
        plan = br.VethPlan(ep.host_veth, ifname, net.bridge, ep.mac, net.mtu, f"{ep.ip}/{ep.prefixlen}", gateway,
                           link_local_cidrs(cfg), f"{ip6}/{ep.prefixlen6}" if ip6 else "", ep.gateway6)
        sandbox.endpoints[net.id] = ep
        sandbox.request = replace(req, endpoints={**req.endpoints, net.name: cfg})
        self._save_sandbox(sandbox)
        try:
            handle = self._handle(sandbox)
            start_dns = net.user_defined and not self._dns.serving(sandbox.container_id)

            def inside() -> tuple[Any, Any] | None:
                br.configure_peer(plan)
                return make_sockets() if start_dns else None

            sockets = await run_in_netns(handle, inside, before=lambda fd: br.create_veth(plan, fd))
            if sockets is not None:
                sandbox.dns = True
                await self._dns.serve(sandbox.container_id, *sockets)
            await self._write_files(sandbox)
            self._save_sandbox(sandbox)
        except BaseException:
            sandbox.endpoints.pop(net.id, None)
            self._ipam.release_address(net.id, ip)
            self._ipam6.release_address(net.id, ip6)
            await asyncio.to_thread(br.delete_veth, ep.host_veth, net.bridge)
            self._save_sandbox(sandbox)
            raise

    async def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        directory = self._need_directory()
        target = directory.network_target(container_ref)
        req = target.request
        try:
            net: Network | None = self.find(net_ref)
        except NotFound:
            if not force:
                raise
            net = None
        name = net.name if net is not None else net_ref
        sandbox = self._sandboxes.get(req.container_id)
        endpoints = {k: v for k, v in req.endpoints.items()
                     if k != name and (net is None or not self._names_network(k, net))}
        if net is not None and self._is_primary(req, net):
            endpoints[PRIMARY_LEFT] = EndpointConfig()
        if target.running_pid is None or net is None or sandbox is None:
            joined = [] if net is None else [n.id for n, _ in self._resolve_requested(req)]
            if net is not None and net.id not in joined:
                raise SystemError_(f"container {req.container_id} is not connected to the network {name}")
            await directory.endpoints_changed(req.container_id, endpoints, None)
            return
        if req.network_mode == "host" and net.driver == "host":
            raise InvalidParameter(ERR_DISCONNECT_HOST)
        if net.id not in sandbox.endpoints:
            raise SystemError_(f"container {req.container_id} is not connected to network {net.name}")
        async with self._lock:
            await self._detach_one(sandbox, net)
        self._event(net, "disconnect", container=req.container_id)
        await directory.endpoints_changed(req.container_id, endpoints, self._render(sandbox))

    async def _detach_one(self, sandbox: Sandbox, net: Network) -> None:
        ep = sandbox.endpoints.pop(net.id)
        handle = self._netns.get(sandbox.container_id)
        if handle is not None:
            with contextlib.suppress(Exception):
                await run_in_netns(handle, lambda: br.remove_peer(ep.ifname))
        await asyncio.to_thread(br.delete_veth, ep.host_veth, net.bridge)
        self._ipam.release_address(net.id, ep.ip)
        self._ipam6.release_address(net.id, ep.ip6)
        if ep.gateway and self._bindings.get(sandbox.container_id):
            await close_all(self._bindings.pop(sandbox.container_id), self._ports)
            sandbox.ports = []
            await self._sync_firewall()
        if sandbox.dns and not any(
            (n := self._networks.get(e.network_id)) is not None and n.user_defined for e in sandbox.endpoints.values()
        ):
            sandbox.dns = False
            await self._dns.stop(sandbox.container_id)
        sandbox.request = replace(
            sandbox.request, endpoints={k: v for k, v in sandbox.request.endpoints.items() if k not in (net.name, net.id)}
        )
        await self._write_files(sandbox)
        self._save_sandbox(sandbox)


def _claim(net: Network) -> BridgeClaim:
    """Claim the network's bridge (created or adopted) with its IPv4 gateway and, for an
    IPv6 network, its IPv6 gateway, remembering what was done to an adopted one."""
    claim = br.claim_bridge(net.bridge, f"{net.gateway}/{net.prefixlen}", net.mtu, net.bridge_claim)
    if net.subnet6:
        enabled, added = br.add_bridge_address6(net.bridge, _cidr6(net))
        if not claim.created:
            claim = replace(claim, added6=_cidr6(net) if added else claim.added6,
                            enabled_ipv6=claim.enabled_ipv6 or enabled)
    return claim


def _cidr6(net: Network) -> str:
    return f"{net.gateway6}/{_prefixlen6(net)}"


def _prefixlen6(net: Network) -> int:
    return int(net.subnet6.split("/")[1]) if net.subnet6 else 0


def _mac(cfg: EndpointConfig) -> str:
    return cfg.mac_address.lower().replace("-", ":")


def _delete_veths(veths: list[tuple[str, str]]) -> None:
    for name, bridge in veths:
        try:
            br.delete_veth(name, bridge)
        except Exception as exc:
            log.warning("could not delete %s: %s", name, exc)


def _created_ns(net: Network) -> int:
    try:
        return parse_timestamp(net.created)
    except ValueError:
        return 0


__all__ = ["LIST_FILTERS", "PRUNE_FILTERS", "NetworkCreate", "AttachedContainer", "NetworkView", "NetworkService"]
