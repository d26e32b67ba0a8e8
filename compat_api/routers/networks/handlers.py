"""Handlers of the networks area: parse, call the network service, render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from compat_api.params import api_version, filters_value, json_body
from compat_api.render import json_response
from compat_api.routers.networks.backend import networking
from compat_api.routers.networks.render import render_network
from compat_api.versions import APIVersion
from compat_api.wire.goshapes import NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT, check_body
from runtime.errors import InvalidParameter
from runtime.network.contract import EndpointConfig
from runtime.network.ipam import PoolConfig
from runtime.network.service import NetworkCreate

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


async def list_networks(request: web.Request) -> web.Response:
    views = networking(request).views(filters_value(request))
    detailed = api_version(request) < APIVersion(1, 28)
    return json_response([render_network(v, detailed) for v in views])


async def inspect(request: web.Request) -> web.Response:
    verbose_text = request.query.get("verbose", "")
    if verbose_text:
        try:
            _parse_bool(verbose_text)
        except ValueError as exc:
            raise InvalidParameter(f"invalid value for verbose: {verbose_text}: {exc}") from None
    view = networking(request).view(request.match_info["id"], request.query.get("scope", ""))
    return json_response(render_network(view, detailed=True))


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParameter(f"invalid JSON: {field} must be an object")
    return {str(k): str(v) for k, v in value.items()}


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def parse_create(body: Mapping[str, Any], version: APIVersion) -> NetworkCreate:
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, Mapping):
        raise InvalidParameter("invalid JSON: IPAM must be an object")
    configs = []
    for entry in ipam.get("Config") or ():
        if not isinstance(entry, Mapping):
            raise InvalidParameter("invalid JSON: IPAM.Config entries must be objects")
        configs.append(PoolConfig(
            subnet=str(entry.get("Subnet") or ""), ip_range=str(entry.get("IPRange") or ""),
            gateway=str(entry.get("Gateway") or ""),
            aux_addresses=_str_map(entry.get("AuxiliaryAddresses") or entry.get("AuxAddress"), "AuxiliaryAddresses"),
        ))
    ipam_options = ipam.get("Options")
    config_from = body.get("ConfigFrom") or {}
    return NetworkCreate(
        name=str(body.get("Name") or ""),
        driver=str(body.get("Driver") or "bridge"),
        scope=str(body.get("Scope") or ""),
        internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")),
        ingress=bool(body.get("Ingress")),
        config_only=bool(body.get("ConfigOnly")),
        config_from=str(config_from.get("Network") or "") if isinstance(config_from, Mapping) else "",
        ipam_driver=str(ipam.get("Driver") or "default"),
        ipam_options=None if ipam_options is None else _str_map(ipam_options, "IPAM.Options"),
        ipam_config=tuple(configs),
        # the field arrived with API 1.48; older clients cannot ask for it
        enable_ipv4=_opt_bool(body.get("EnableIPv4")) if version >= APIVersion(1, 48) else None,
        enable_ipv6=_opt_bool(body.get("EnableIPv6")),
        options=_str_map(body.get("Options"), "Options"),
        labels=_str_map(body.get("Labels"), "Labels"),
    )


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    check_body(body, NETWORK_CREATE)
    network_id = await networking(request).create(parse_create(body, api_version(request)))
    return json_response({"Id": network_id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.Response:
    await networking(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    check_body(body, NETWORK_CONNECT)
    endpoint = body.get("EndpointConfig")
    if endpoint is not None and not isinstance(endpoint, Mapping):
        raise InvalidParameter("invalid JSON: EndpointConfig must be an object")
    await networking(request).connect(
        request.match_info["id"], str(body.get("Container") or ""), EndpointConfig.from_wire(endpoint)
    )
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await json_body(request, required=True)
    check_body(body, NETWORK_DISCONNECT)
    await networking(request).disconnect(
        request.match_info["id"], str(body.get("Container") or ""), bool(body.get("Force"))
    )
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    deleted = await networking(request).prune(filters_value(request))
    return json_response({"NetworksDeleted": deleted or None})
