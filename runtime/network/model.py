"""Persistent records of networking: networks and container sandboxes (JSON on disk)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.network.contract import EndpointConfig, Link, PortBindingSpec, SandboxRequest
from runtime.network.ipam import PoolConfig

PREDEFINED = ("bridge", "host", "none")
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"


def is_predefined(name: str) -> bool:
    """dockerd's IsPredefined: the three built-in networks and the ``default`` mode."""
    return name in ("bridge", "host", "none", "default")


def _bool_opt(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "t", "true")


@dataclass(frozen=True, slots=True)
class BridgeClaim:
    """What pydockerd did to a network's bridge interface, so that releasing it undoes
    exactly that and nothing else (moby's ``BridgeIfaceCreator``, plus the addresses).

    ``created``: pydockerd made the interface, and deletes it when the network goes. An
    adopted bridge (``created`` false) is never deleted: pydockerd takes off the address
    it ``added``, puts back the addresses it ``displaced`` (dockerd replaces a bridge's
    selected IPv4 address with the network's gateway), and sets it down again if it was
    ``brought_up``."""

    created: bool = False
    added: str = ""  # "a.b.c.d/len"
    displaced: tuple[str, ...] = ()
    brought_up: bool = False
    added6: str = ""  # the IPv6 gateway put on an adopted bridge
    enabled_ipv6: bool = False  # its disable_ipv6 sysctl was 1

    def merged_with(self, earlier: BridgeClaim | None) -> BridgeClaim:
        """This claim, made again over a bridge that ``earlier`` had already claimed (a
        daemon restart): what was displaced or added then is still to be undone."""
        if earlier is None or self.created:
            return self
        return BridgeClaim(
            created=earlier.created,
            added=self.added or earlier.added,
            displaced=tuple(dict.fromkeys(earlier.displaced + self.displaced)),
            brought_up=self.brought_up or earlier.brought_up,
            added6=self.added6 or earlier.added6,
            enabled_ipv6=self.enabled_ipv6 or earlier.enabled_ipv6,
        )

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "added": self.added, "displaced": list(self.displaced),
                "brought_up": self.brought_up, "added6": self.added6, "enabled_ipv6": self.enabled_ipv6}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BridgeClaim:
        return cls(bool(data.get("created")), str(data.get("added") or ""),
                   tuple(str(a) for a in data.get("displaced") or ()), bool(data.get("brought_up")),
                   str(data.get("added6") or ""), bool(data.get("enabled_ipv6")))


@dataclass(slots=True)
class Network:
    """One network as stored and as inspect shows it (plus its allocated pool)."""

    id: str
    name: str
    driver: str
    created: str
    scope: str = "local"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    config_only: bool = False
    config_from: str = ""
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None
    ipam_config: list[PoolConfig] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # what IPAM handed out (bridge networks)
    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    bridge: str = ""
    subnet6: str = ""  # EnableIPv6: the IPv6 subnet and gateway
    gateway6: str = ""
    # None: not claimed yet, or a record written before claims were kept
    bridge_claim: BridgeClaim | None = None

    @property
    def predefined(self) -> bool:
        return is_predefined(self.name)

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    @property
    def user_defined(self) -> bool:
        """A bridge network other than the default one (gets the embedded DNS server)."""
        return self.is_bridge and self.name != "bridge"

    @property
    def icc(self) -> bool:
        return _bool_opt(self.options.get(OPT_ICC), True)

    @property
    def masquerade(self) -> bool:
        return _bool_opt(self.options.get(OPT_MASQUERADE), True)

    @property
    def mtu(self) -> int:
        try:
            return int(self.options.get(OPT_MTU, "") or 1500)
        except ValueError:
            return 1500

    @property
    def host_binding_ip(self) -> str:
        return self.options.get(OPT_HOST_BINDING, "")

    @property
    def user_subnet(self) -> bool:
        return any(c.subnet for c in self.ipam_config)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ipam_config"] = [
            {"subnet": c.subnet, "ip_range": c.ip_range, "gateway": c.gateway, "aux_addresses": dict(c.aux_addresses)}
            for c in self.ipam_config
        ]
        data["bridge_claim"] = None if self.bridge_claim is None else self.bridge_claim.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Network:
        data = dict(data)
        data["ipam_config"] = [PoolConfig(**c) for c in data.get("ipam_config", [])]
        if "bridge_claim" in data:
            claim = data["bridge_claim"]
            data["bridge_claim"] = None if claim is None else BridgeClaim.from_json(claim)
        elif data.get("driver") == "bridge" and data.get("bridge"):
            data["bridge_claim"] = _claim_before_records(data)
        return cls(**data)


def _claim_before_records(data: dict[str, Any]) -> BridgeClaim:
    """A record from before claims were kept: its bridge was pydockerd's own if it bears
    the name pydockerd gives (``br-<id12>``); any other was possibly adopted, so it is
    only ever given back, without the gateway address pydockerd put on it."""
    if data["bridge"] == f"br-{str(data.get('id', ''))[:12]}":
        return BridgeClaim(created=True)
    gateway, subnet = data.get("gateway") or "", data.get("subnet") or ""
    added = f"{gateway}/{subnet.split('/')[1]}" if gateway and "/" in subnet else ""
    return BridgeClaim(created=False, added=added)


@dataclass(slots=True)
class Endpoint:
    """A container's attachment to one network (only while the container runs)."""

    network_id: str
    endpoint_id: str
    ifname: str = ""  # eth0... inside the container; "" for host/none
    host_veth: str = ""
    ip: str = ""
    prefixlen: int = 0
    gateway: str = ""
    mac: str = ""
    ip6: str = ""
    prefixlen6: int = 0
    gateway6: str = ""
    config: EndpointConfig = field(default_factory=EndpointConfig)
    dns_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_wire()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoint:
        data = dict(data)
        data["config"] = EndpointConfig.from_wire(data.get("config"))
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PortRecord:
    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


@dataclass(slots=True)
class Sandbox:
    """The networking of one running container, persisted so a restarted daemon can
    clean it up (or re-serve it while the container lives)."""

    container_id: str
    sandbox_id: str
    request: SandboxRequest
    pid: int | None = None
    netns_inode: int = 0
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by network ID, in attach order
    ports: list[PortRecord] = field(default_factory=list)
    dns: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "container_id": self.container_id,
            "sandbox_id": self.sandbox_id,
            "request": request_to_json(self.request),
            "pid": self.pid,
            "netns_inode": self.netns_inode,
            "endpoints": [ep.to_json() for ep in self.endpoints.values()],
            "ports": [asdict(p) for p in self.ports],
            "dns": self.dns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sandbox:
        endpoints = [Endpoint.from_json(e) for e in data.get("endpoints", [])]
        return cls(
            container_id=data["container_id"],
            sandbox_id=data["sandbox_id"],
            request=request_from_json(data["request"]),
            pid=data.get("pid"),
            netns_inode=int(data.get("netns_inode") or 0),
            endpoints={e.network_id: e for e in endpoints},
            ports=[PortRecord(**p) for p in data.get("ports", [])],
            dns=bool(data.get("dns")),
        )


def request_to_json(req: SandboxRequest) -> dict[str, Any]:
    return {
        "container_id": req.container_id,
        "name": req.name,
        "hostname": req.hostname,
        "domainname": req.domainname,
        "network_mode": req.network_mode,
        "endpoints": {k: v.to_wire() for k, v in req.endpoints.items()},
        "exposed_ports": list(req.exposed_ports),
        "port_bindings": {
            k: None if v is None else [{"HostIp": b.host_ip, "HostPort": b.host_port} for b in v]
            for k, v in req.port_bindings.items()
        },
        "publish_all_ports": req.publish_all_ports,
        "dns": list(req.dns),
        "dns_search": list(req.dns_search),
        "dns_options": list(req.dns_options),
        "extra_hosts": list(req.extra_hosts),
        "links": [[link.target_id, link.alias] for link in req.links],
        "env": list(req.env),
        "hosts_path": req.hosts_path,
        "resolv_conf_path": req.resolv_conf_path,
    }


def request_from_json(data: dict[str, Any]) -> SandboxRequest:
    return SandboxRequest(
        container_id=data["container_id"],
        name=data["name"],
        hostname=data["hostname"],
        domainname=data.get("domainname", ""),
        network_mode=data.get("network_mode", "default"),
        endpoints={k: EndpointConfig.from_wire(v) for k, v in (data.get("endpoints") or {}).items()},
        exposed_ports=tuple(data.get("exposed_ports") or ()),
        port_bindings={
            k: None if v is None else tuple(PortBindingSpec(b.get("HostIp", ""), b.get("HostPort", "")) for b in v)
            for k, v in (data.get("port_bindings") or {}).items()
        },
        publish_all_ports=bool(data.get("publish_all_ports")),
        dns=tuple(data.get("dns") or ()),
        dns_search=tuple(data.get("dns_search") or ()),
        dns_options=tuple(data.get("dns_options") or ()),
        extra_hosts=tuple(data.get("extra_hosts") or ()),
        links=tuple(Link(t, a) for t, a in (data.get("links") or ())),
        env=tuple(data.get("env") or ()),
        hosts_path=data.get("hosts_path", ""),
        resolv_conf_path=data.get("resolv_conf_path", ""),
    )


__all__ = [
    "PREDEFINED", "OPT_BRIDGE_NAME", "OPT_ICC", "OPT_MASQUERADE", "OPT_HOST_BINDING", "OPT_MTU",
    "OPT_DEFAULT_BRIDGE", "is_predefined", "BridgeClaim", "Network", "Endpoint", "PortRecord", "Sandbox",
    "request_to_json", "request_from_json",
]
