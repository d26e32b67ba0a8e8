"""The container routes' networking rules: container-wide MacAddress by API version, and
``DELETE /containers/<parent>/<alias>?link=1``."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from runtime.engine import Engine
from runtime.network.versioned import WARN_MAC_DEPRECATED

BASE = {"Image": "busybox", "Cmd": ["true"]}


async def _create(client: TestClient, version: str, body: dict[str, Any], name: str) -> dict[str, Any]:
    resp = await client.post(f"/v{version}/containers/create?name={name}", json=body)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_container_wide_mac_below_and_from_1_44(client: TestClient, wired: Engine) -> None:
    service: Any = wired.containers
    old = await _create(client, "1.43", {**BASE, "MacAddress": "02:42:ac:11:00:0a"}, "old")
    assert old["Warnings"] == []
    assert service.get("old").endpoints_config == {"bridge": {"MacAddress": "02:42:ac:11:00:0a"}}
    assert service.get("old").config.mac_address == "02:42:ac:11:00:0a"
    new = await _create(client, "1.50", {**BASE, "MacAddress": "02:42:ac:11:00:0b"}, "new")
    assert new["Warnings"] == [WARN_MAC_DEPRECATED]
    assert service.get("new").endpoints_config == {"bridge": {"MacAddress": "02:42:ac:11:00:0b"}}
    assert service.get("new").config.mac_address == ""
    # below 1.44 an endpoint MacAddress did not exist: ignored
    body = {**BASE, "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": "02:42:ac:11:00:0c"}}}}
    await _create(client, "1.41", body, "ignored")
    assert service.get("ignored").endpoints_config == {"bridge": {}}
    resp = await client.post("/v1.41/containers/create",
                             json={**BASE, "MacAddress": "02:42:ac:11:00:0d", "HostConfig": {"NetworkMode": "host"}})
    assert resp.status == 400
    assert (await resp.json())["message"] == "conflicting options: mac-address and the network mode"


async def test_remove_link(client: TestClient) -> None:
    target = (await _create(client, "1.50", BASE, "target"))["Id"]
    parent = (await _create(client, "1.50", {**BASE, "HostConfig": {"Links": ["target:db", "target:cache"]}},
                            "parent"))["Id"]
    resp = await client.get("/v1.50/containers/parent/json")
    assert (await resp.json())["HostConfig"]["Links"] == ["/target:/parent/db", "/target:/parent/cache"]
    names = {c["Id"]: c["Names"] for c in await (await client.get("/v1.50/containers/json?all=1")).json()}
    assert names[target] == ["/parent/cache", "/parent/db", "/target"] and names[parent] == ["/parent"]
    resp = await client.delete("/v1.50/containers/parent/db?link=1")
    assert resp.status == 204, await resp.text()
    resp = await client.get("/v1.50/containers/parent/json")
    assert (await resp.json())["HostConfig"]["Links"] == ["/target:/parent/cache"]
    names = {c["Id"]: c["Names"] for c in await (await client.get("/v1.50/containers/json?all=1")).json()}
    assert names[target] == ["/parent/cache", "/target"]
    resp = await client.delete("/v1.50/containers/parent/db?link=1")
    assert resp.status == 404
    assert (await resp.json())["message"] == "No such container: parent/db"
    resp = await client.delete("/v1.50/containers/parent?link=1")
    assert resp.status == 500
    assert (await resp.json())["message"] == "Conflict, cannot remove the default link name of the container"
    resp = await client.delete("/v1.50/containers/nosuch?link=1")
    assert resp.status == 404
    resp = await client.get("/v1.50/containers/target/json")
    assert resp.status == 200  # the target stays
