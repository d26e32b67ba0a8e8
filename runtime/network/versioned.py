"""Networking rules that depend on the requested API version.

The API layer decides *whether* a rule applies (one version check per rule, in
``compat_api/routers/containers/handlers.py``); this module says *what* it does:

* :func:`migrate_container_mac` - the container-wide ``Config.MacAddress`` at create
  (migrated below 1.44, deprecated from 1.44);
* :func:`with_legacy_aliases` - below 1.44, inspect lists the short container ID and the
  hostname among the ``Aliases`` of user-defined networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidParameter
from runtime.network.contract import DEFAULT_MODES

ERR_MAC_MODE = "conflicting options: mac-address and the network mode"
ERR_MAC_MATCH = (
    "if a container-wide MAC address is supplied, HostConfig.NetworkMode must match the identity of a "
    "network in NetworkSettings.Networks"
)
ERR_MAC_DIFFERS = (
    "the container-wide MAC address must match the endpoint-specific MAC address for the main network, "
    "or be left empty"
)
WARN_MAC_DEPRECATED = (
    "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."
)


@dataclass(frozen=True, slots=True)
class MacMigration:
    """The create request after the container-wide ``Config.MacAddress`` rule."""

    endpoints: dict[str, dict[str, Any]]
    container_mac: str  # what stays in Config.MacAddress
    warnings: tuple[str, ...] = field(default=())


def _bridge_or_user_defined(network_mode: str) -> bool:
    return network_mode not in ("host", "none") and not network_mode.startswith("container:")


def migrate_container_mac(
    container_mac: str,
    network_mode: str,
    endpoints: Mapping[str, Any],
    *,
    legacy: bool,
) -> MacMigration:
    """dockerd's handling of the container-wide ``Config.MacAddress``.

    ``legacy`` (API < 1.44): the address moves into the NetworkMode network's endpoint
    settings and any endpoint ``MacAddress`` is ignored (those versions did not have it).
    Otherwise it is deprecated: moved into the NetworkMode network's entry (created if
    the request has none), it must agree with an endpoint address, and a warning says so.
    """
    eps: dict[str, dict[str, Any]] = {k: dict(v or {}) for k, v in endpoints.items()}
    mode = network_mode or "default"
    name = "bridge" if mode in DEFAULT_MODES else mode
    if legacy:
        if not container_mac:
            for ep in eps.values():
                ep.pop("MacAddress", None)
            return MacMigration(eps, container_mac)
        if not _bridge_or_user_defined(mode):
            raise InvalidParameter(ERR_MAC_MODE)
        key = next((k for k in eps if k == name or (name == "bridge" and k in DEFAULT_MODES)), None)
        if key is None:
            if eps:  # below 1.44 there is at most one entry: it is the NetworkMode network's
                key = next(iter(eps))
            else:
                key = name
                eps[key] = {}
        eps[key]["MacAddress"] = container_mac
        return MacMigration(eps, container_mac)
    if not container_mac:
        return MacMigration(eps, container_mac)
    if _bridge_or_user_defined(mode):
        if not eps:
            eps[name] = {"MacAddress": container_mac}
        else:
            main = eps.get(name)
            if main is None:
                raise InvalidParameter(ERR_MAC_MATCH)
            if not main.get("MacAddress"):
                main["MacAddress"] = container_mac
            elif main["MacAddress"] != container_mac:
                raise InvalidParameter(ERR_MAC_DIFFERS)
    return MacMigration(eps, "", (WARN_MAC_DEPRECATED,))


def with_legacy_aliases(settings: Mapping[str, Any], container_id: str, hostname: str) -> dict[str, Any]:
    """``NetworkSettings`` with the short ID and hostname appended to each user-defined
    network's ``Aliases`` (deduplicated), as older Engines reported them."""
    result = dict(settings)
    networks: dict[str, Any] = {}
    for name, entry in (settings.get("Networks") or {}).items():
        if name in ("bridge", "host", "none", "default") or not isinstance(entry, Mapping):
            networks[name] = entry
            continue
        aliases: list[str] = []
        for alias in [*(entry.get("Aliases") or ()), container_id[:12], hostname]:
            if alias and alias not in aliases:
                aliases.append(alias)
        networks[name] = {**entry, "Aliases": aliases}
    result["Networks"] = networks
    return result


__all__ = [
    "with_legacy_aliases", "ERR_MAC_MODE", "ERR_MAC_MATCH", "ERR_MAC_DIFFERS", "WARN_MAC_DEPRECATED", "MacMigration",
    "migrate_container_mac",
]
