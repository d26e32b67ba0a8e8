"""The /networks endpoints against the real NetworkService (bridges, namespaces)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from runtime.engine import Engine
from runtime.network.contract import ConnectTarget
from runtime.network.service import NetworkService
from tests.runtime.network.conftest import container_request
from tests.runtime.network.test_service import FakeDirectory
from tests.spec import load_spec


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine, service: NetworkService) -> TestClient:
    engine.networking = service  # type: ignore[attr-defined]
    return await aiohttp_client(create_app(engine))


async def test_list_shape_and_alias(client: TestClient) -> None:
    resp = await client.get("/v1.50/networks")
    assert resp.status == 200
    body = await resp.json()
    assert sorted(n["Name"] for n in body) == ["bridge", "host", "none"]
    spec = set(load_spec()["definitions"]["Network"]["properties"])
    for net in body:
        assert spec - set(net) == {"Peers"}
        assert net["Containers"] == {} and net["Scope"] == "local"
    bridge = next(n for n in body if n["Name"] == "bridge")
    assert bridge["IPAM"]["Config"][0]["Subnet"].startswith("10.213.")
    assert bridge["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    host = next(n for n in body if n["Name"] == "host")
    assert host["IPAM"] == {"Driver": "default", "Options": None, "Config": None}
    assert await (await client.get("/networks/")).json() == await (await client.get("/networks")).json()
    bad = await client.get("/networks", params={"filters": json.dumps({"nope": ["x"]})})
    assert bad.status == 400 and (await bad.json())["message"] == "invalid filter 'nope'"
    builtin = await (await client.get("/networks", params={"filters": json.dumps({"type": {"custom": True}})})).json()
    assert builtin == []


async def test_create_inspect_remove_cycle(client: TestClient) -> None:
    resp = await client.post("/v1.50/networks/create", json={
        "Name": "pydt-api", "Driver": "bridge", "CheckDuplicate": True, "Labels": {"l": "v"},
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.213.198.0/24", "Gateway": "10.213.198.254"}]},
        "Options": {"com.docker.network.bridge.name": "pydt-apibr"},
    })
    assert resp.status == 201
    created = await resp.json()
    assert set(created) == {"Id", "Warning"} and created["Warning"] == ""
    net_id = created["Id"]
    dup = await client.post("/networks/create", json={"Name": "pydt-api"})
    assert dup.status == 409 and (await dup.json())["message"] == "network with name pydt-api already exists"
    overlap = await client.post("/networks/create", json={"Name": "x", "IPAM": {"Config": [{"Subnet": "10.213.198.0/25"}]}})
    assert overlap.status == 403
    assert (await overlap.json())["message"] == "invalid pool request: Pool overlaps with other one on this address space"
    bad = await client.post("/networks/create", json={"Name": "x", "IPAM": {"Config": [{"Subnet": "10.213.197.1/24"}]}})
    assert bad.status == 400
    assert (await bad.json())["message"] == "invalid network config:\ninvalid subnet 10.213.197.1/24: it should be 10.213.197.0/24"
    pre = await client.post("/networks/create", json={"Name": "host"})
    assert pre.status == 403
    for ref in ("pydt-api", net_id, net_id[:10]):
        got = await client.get(f"/networks/{ref}")
        assert got.status == 200
        body = await got.json()
        assert body["Id"] == net_id and body["Name"] == "pydt-api"
    assert body["IPAM"] == {"Driver": "default", "Options": {},
                            "Config": [{"Subnet": "10.213.198.0/24", "Gateway": "10.213.198.254"}]}
    assert body["Labels"] == {"l": "v"} and body["Options"] == {"com.docker.network.bridge.name": "pydt-apibr"}
    assert (await client.get(f"/networks/{net_id}", params={"verbose": "true", "scope": "local"})).status == 200
    assert (await client.get(f"/networks/{net_id}", params={"scope": "swarm"})).status == 404
    verbose = await client.get(f"/networks/{net_id}", params={"verbose": "maybe"})
    assert verbose.status == 400
    missing = await client.get("/networks/nosuchnet")
    assert missing.status == 404 and (await missing.json())["message"] == "network nosuchnet not found"
    rm_bridge = await client.delete("/networks/bridge")
    assert rm_bridge.status == 403
    assert (await rm_bridge.json())["message"] == "bridge is a pre-defined network and cannot be removed"
    assert (await client.delete(f"/networks/{net_id}")).status == 204
    assert (await client.delete(f"/networks/{net_id}")).status == 404


async def test_prune(client: TestClient) -> None:
    for name, labels in (("pydt-p1", {"keep": "1"}), ("pydt-p2", {})):
        assert (await client.post("/networks/create", json={"Name": name, "Labels": labels})).status == 201
    resp = await client.post("/networks/prune", params={"filters": json.dumps({"label!": ["keep"]})})
    assert await resp.json() == {"NetworksDeleted": ["pydt-p2"]}
    resp = await client.post("/networks/prune")
    assert await resp.json() == {"NetworksDeleted": ["pydt-p1"]}
    assert await (await client.post("/networks/prune")).json() == {"NetworksDeleted": None}
    bad = await client.post("/networks/prune", params={"filters": json.dumps({"dangling": ["true"]})})
    assert bad.status == 400


async def test_inspect_lists_attached_containers_and_connect(
    client: TestClient, service: NetworkService, netns_pid: int, tmp_path: Path
) -> None:
    cid = secrets.token_hex(32)
    req = container_request(cid, "web", tmp_path)
    settings = await service.attach_container(req, netns_pid)
    body = await (await client.get("/networks/bridge")).json()
    assert body["Containers"] == {cid: {
        "Name": "web", "EndpointID": settings["Networks"]["bridge"]["EndpointID"],
        "MacAddress": settings["MacAddress"], "IPv4Address": f"{settings['IPAddress']}/24", "IPv6Address": "",
    }}
    listed = await (await client.get("/networks", params={"filters": json.dumps({"name": ["bridge"]})})).json()
    assert listed[0]["Containers"] == {}  # only inspect details the endpoints (API >= 1.28)
    old = await (await client.get("/v1.27/networks", params={"filters": json.dumps({"name": ["^bridge$"]})})).json()
    assert list(old[0]["Containers"]) == [cid]
    no_dir = await client.post("/networks/bridge/connect", json={"Container": "web"})
    assert no_dir.status == 501
    directory = FakeDirectory()
    directory.targets = {cid: ConnectTarget(req, netns_pid)}
    service.set_container_directory(directory)
    assert (await client.post("/networks/create", json={"Name": "pydt-conn"})).status == 201
    resp = await client.post("/networks/pydt-conn/connect",
                             json={"Container": "web", "EndpointConfig": {"Aliases": ["front"]}})
    assert resp.status == 200
    inspect = await (await client.get("/networks/pydt-conn")).json()
    assert [c["Name"] for c in inspect["Containers"].values()] == ["web"]
    missing = await client.post("/networks/pydt-conn/connect", json={"Container": "ghost"})
    assert missing.status == 404 and (await missing.json())["message"] == "No such container: ghost"
    busy = await client.delete("/networks/pydt-conn")
    assert busy.status == 403 and "has active endpoints" in (await busy.json())["message"]
    resp = await client.post("/networks/pydt-conn/disconnect", json={"Container": "web", "Force": False})
    assert resp.status == 200
    assert (await (await client.get("/networks/pydt-conn")).json())["Containers"] == {}
