"""The state of one daemon's networking, shared by the operation modules.

:class:`NetworkContext` holds what the network service knows (networks, the sandboxes of
running containers, their namespaces, published ports, DNS upstreams), what it drives
(IPAM, the port allocator, the embedded DNS server, the firewalls) and the lock that
serialises changes; plus the lookups, persistence and firewall rendering every operation
needs. The operations themselves live in their own modules, each a set of functions
taking the context:

* :mod:`runtime.network.lifecycle` - restore at daemon start, teardown at stop;
* :mod:`runtime.network.networks` - create, remove and prune networks;
* :mod:`runtime.network.attach` - a container's networking at start and exit;
* :mod:`runtime.network.endpoints` - connect and disconnect of a container;
* :mod:`runtime.network.sandbox_files` - its ``/etc/hosts`` and ``/etc/resolv.conf``;
* :mod:`runtime.network.views` - inspect, list and ``NetworkSettings`` rendering.

:class:`runtime.network.service.NetworkService` is the facade over them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine, Iterable
from ipaddress import IPv4Network
from pathlib import Path

from runtime.config import DaemonConfig
from runtime.errors import InvalidParameter, NotFound, NotImplementedFeature, SystemError_
from runtime.events import EventBus
from runtime.network import bridge as br
from runtime.network.contract import (
    DEFAULT_MODES,
    PRIMARY_LEFT,
    ContainerDirectory,
    EndpointConfig,
    SandboxRequest,
)
from runtime.network.dns import EmbeddedDns
from runtime.network.etcfiles import ExtServer
from runtime.network.firewall import BridgeRules, Firewall, PortRule
from runtime.network.ipam import Ipam, NoAvailableAddresses
from runtime.network.ipam6 import Ipam6
from runtime.network.model import Network, Sandbox
from runtime.network.netns import NetnsHandle
from runtime.network.portmap import Binding, PortAllocator, host_ipv6_listenable
from runtime.network.resolver import SandboxResolver
from runtime.network.sandboxes import mode_network, requested
from runtime.statefile import write_json_atomic

log = logging.getLogger(__name__)


def new_id() -> str:
    """A network, endpoint or sandbox ID (64 hex digits, as dockerd's)."""
    return secrets.token_hex(32)


def prefixlen6(net: Network) -> int:
    return int(net.subnet6.split("/")[1]) if net.subnet6 else 0


def mac_of(cfg: EndpointConfig) -> str:
    """The MAC address the user asked for, in the kernel's spelling ("" for none)."""
    return cfg.mac_address.lower().replace("-", ":")


def delete_veths(veths: list[tuple[str, str]]) -> None:
    """Delete host veths, each only if it is still plugged into its bridge (blocking)."""
    for name, bridge in veths:
        try:
            br.delete_veth(name, bridge)
        except Exception as exc:
            log.warning("could not delete %s: %s", name, exc)


class NetworkContext:
    """Networking state of one daemon and the helpers shared by its operations.

    Every change to ``networks`` or ``sandboxes`` happens under :attr:`lock`; the
    records on disk (under ``<data-root>/network/``) are written through
    :meth:`save_network` and :meth:`save_sandbox`. The maps are changed in place, never
    rebound: :attr:`resolver` (the DNS server's backend) reads the same objects."""

    def __init__(
        self,
        config: DaemonConfig,
        events: EventBus,
        *,
        firewall: Firewall,
        firewall6: Firewall,
        reserved: Callable[[], Iterable[IPv4Network]],
        host_resolv_conf: Path,
        host_hosts: Path,
    ) -> None:
        self.config = config
        self.events = events
        self.root = config.data_root / "network"
        self.networks: dict[str, Network] = {}
        self.sandboxes: dict[str, Sandbox] = {}
        self.netns: dict[str, NetnsHandle] = {}  # by container ID, while it runs
        self.closed = False
        self.bindings: dict[str, list[Binding]] = {}
        self.ext_servers: dict[str, list[ExtServer]] = {}
        self.ipv6_in: dict[str, bool] = {}
        self.background: set[asyncio.Task[None]] = set()
        self.setup_error: str | None = None
        self.ipam = Ipam(reserved=reserved)
        self.ipam6 = Ipam6()
        self.ports = PortAllocator()
        self.resolver = SandboxResolver(self.sandboxes, self.networks, self.ext_servers)
        self.dns = EmbeddedDns(self.resolver)
        self.firewall = firewall
        # ip6tables: set up with the first IPv6 network; a failure leaves IPv6 without NAT
        self.firewall6 = firewall6
        self.fw6_state = ""  # "" not set up, "ready", or the setup error
        self.lock = asyncio.Lock()
        self.directory: ContainerDirectory | None = None
        self.host_resolv = host_resolv_conf
        self.host_hosts = host_hosts
        self.ipv6_host = host_ipv6_listenable()

    # -- persistence -----------------------------------------------------------------

    def save_network(self, net: Network) -> None:
        write_json_atomic(self.root / "networks" / f"{net.id}.json", net.to_json())

    def drop_network_file(self, net_id: str) -> None:
        (self.root / "networks" / f"{net_id}.json").unlink(missing_ok=True)

    def save_sandbox(self, sandbox: Sandbox) -> None:
        write_json_atomic(self.root / "sandboxes" / f"{sandbox.container_id}.json",
                          sandbox.to_json(), sync_dir=False)  # rewritten per attach

    def drop_sandbox_file(self, container_id: str) -> None:
        (self.root / "sandboxes" / f"{container_id}.json").unlink(missing_ok=True)

    def read_host_resolv(self) -> str:
        try:
            return self.host_resolv.read_text()
        except OSError:
            return ""

    # -- lookups ---------------------------------------------------------------------

    def find(self, ref: str) -> Network:
        """dockerd's FindNetwork: full ID, then exact name, then unique ID prefix."""
        if ref in self.networks:
            return self.networks[ref]
        by_name = [n for n in self.networks.values() if n.name == ref]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_name)} matches found on name)")
        by_prefix = [n for n in self.networks.values() if ref and n.id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_prefix)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    @property
    def default_bridge(self) -> Network:
        return next(n for n in self.networks.values() if n.name == "bridge")

    def host_gateway_ips(self) -> list[str]:
        return [self.default_bridge.gateway]

    def need_directory(self) -> ContainerDirectory:
        if self.directory is None:
            raise NotImplementedFeature("connecting containers to networks is not available yet")
        return self.directory

    def resolve_requested(self, request: SandboxRequest) -> list[tuple[Network, EndpointConfig]]:
        """The networks a container joins, in order, each with its endpoint settings."""
        result: list[tuple[Network, EndpointConfig]] = []
        for ref, cfg in requested(request):
            net = self.find(ref)
            index = next((i for i, (n, _) in enumerate(result) if n.id == net.id), None)
            if index is None:
                result.append((net, cfg))
            elif cfg != EndpointConfig():  # the same network spelled twice: the entry with settings wins
                result[index] = (net, cfg)
        return result

    def names_network(self, key: str, net: Network) -> bool:
        """Whether an EndpointsConfig key (name, ID, ID prefix, ``default``) means ``net``."""
        if key in (net.name, net.id) or (key in DEFAULT_MODES and net.name == "bridge"):
            return True
        try:
            return bool(key) and key != PRIMARY_LEFT and self.find(key).id == net.id
        except (NotFound, InvalidParameter):
            return False

    def is_primary(self, request: SandboxRequest, net: Network) -> bool:
        primary = mode_network(request.network_mode)
        return primary is not None and self.names_network(primary, net)

    def handle(self, sandbox: Sandbox) -> NetnsHandle:
        """The namespace taken when the sandbox's container started."""
        handle = self.netns.get(sandbox.container_id)
        if handle is None:
            raise SystemError_(f"container {sandbox.container_id[:12]} has no network namespace to configure")
        return handle

    def host_veths(self, sandbox: Sandbox) -> list[tuple[str, str]]:
        """(host veth, bridge it must be plugged into) of each of the sandbox's endpoints."""
        return [
            (ep.host_veth, net.bridge) for ep in sandbox.endpoints.values()
            if ep.host_veth and (net := self.networks.get(ep.network_id)) is not None
        ]

    def request_ip6(self, net: Network, cfg: EndpointConfig) -> str:
        """The endpoint's IPv6 address on an IPv6 network ("" otherwise)."""
        if not net.subnet6 or not self.ipam6.has_pool(net.id):
            return ""
        try:
            return str(self.ipam6.request_address(net.id, cfg.ipv6_address))
        except NoAvailableAddresses:
            raise SystemError_(
                f"no available IPv6 addresses on this network's address pools: {net.name} ({net.id})"
            ) from None

    # -- effects ---------------------------------------------------------------------

    def event(self, net: Network, action: str, **extra: str) -> None:
        self.events.publish("network", action, net.id, {**extra, "name": net.name, "type": net.driver})

    def in_background(self, work: Coroutine[object, object, None]) -> None:
        """Run ``work`` without waiting for it; :func:`lifecycle.close` waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def sync_firewall(self) -> None:
        """Render the iptables (and ip6tables) rules of every bridge network and every
        published port from the current state."""
        # after a clean stop removed every rule, a late detach must not put them back
        if self.setup_error is not None or self.closed:
            return
        rules = [
            BridgeRules(n.bridge, n.subnet, n.internal, n.masquerade, n.icc)
            for n in sorted(self.networks.values(), key=lambda n: n.created) if n.is_bridge
        ]
        ports = [
            PortRule(p.proto, p.host_ip, p.host_port, p.container_ip, p.container_port, p.bridge)
            for sb in self.sandboxes.values() for p in sb.ports
            if ":" not in p.host_ip and not p.host_ip.startswith("127.")
        ]
        await self.firewall.sync(rules, ports)
        rules6 = [
            BridgeRules(n.bridge, n.subnet6, n.internal, n.masquerade, n.icc)
            for n in sorted(self.networks.values(), key=lambda n: n.created) if n.is_bridge and n.subnet6
        ]
        if rules6 and not self.fw6_state:
            try:
                await self.firewall6.setup()
                self.fw6_state = "ready"
            except SystemError_ as exc:
                self.fw6_state = str(exc)
                log.warning("ip6tables unavailable, IPv6 networks get no NAT or isolation rules: %s", exc)
        if self.fw6_state == "ready":
            await self.firewall6.sync(rules6, [])


__all__ = ["NetworkContext", "new_id", "prefixlen6", "mac_of", "delete_veths"]
