"""The /volumes endpoints against a real VolumeService: shapes of the v1.50 spec, status
codes and dockerd's texts, per-version behaviour (prune, PUT)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.routers.volumes.render import render_usage
from runtime.engine import Engine
from runtime.volumes.model import ANONYMOUS_LABEL, VolumeUsage
from runtime.volumes.service import VolumeService
from tests.spec import load_spec


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> VolumeService:
    return VolumeService.open(tmp_path / "vols", engine.events)


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine, service: VolumeService) -> TestClient:
    engine.volumes = service
    return await aiohttp_client(create_app(engine))


def _required(definition: str) -> set[str]:
    return set(load_spec()["definitions"][definition]["required"])


async def test_create_inspect_list_remove(client: TestClient, service: VolumeService) -> None:
    resp = await client.post("/v1.50/volumes/create",
                             json={"Name": "data", "Labels": {"a": "b"},
                                   "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}})
    assert resp.status == 201
    body = await resp.json()
    assert _required("Volume") <= set(body) and "UsageData" not in body
    assert (body["Name"], body["Driver"], body["Scope"]) == ("data", "local", "local")
    assert body["Labels"] == {"a": "b"}
    assert body["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert body["Mountpoint"] == service.get("data").mountpoint
    again = await client.post("/volumes/create", json={"Name": "data"})
    assert again.status == 201 and await again.json() == body
    assert await (await client.get("/volumes/data")).json() == body
    listed = await client.get("/volumes")
    assert await listed.json() == {"Volumes": [body], "Warnings": None}
    assert (await client.delete("/volumes/data")).status == 204
    missing = await client.get("/volumes/data")
    assert missing.status == 404
    assert await missing.json() == {"message": "get data: no such volume"}
    assert (await client.delete("/volumes/data")).status == 404
    assert (await client.delete("/volumes/data?force=1")).status == 204


async def test_create_without_body_is_anonymous(client: TestClient) -> None:
    resp = await client.post("/volumes/create")
    body = await resp.json()
    assert resp.status == 201 and len(body["Name"]) == 64
    assert body["Labels"] == {ANONYMOUS_LABEL: ""} and body["Options"] is None


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Name": "a"}, 400, "create a: volume name is too short, names should be at least two "
                         "alphanumeric characters"),
    ({"Name": "ok", "DriverOpts": {"o": "x"}}, 400, 'create ok: missing required option: '
                                                    '"device"'),
    ({"Name": "ok", "Driver": "nfs"}, 404, 'create ok: error looking up volume plugin nfs: '
                                           'plugin "nfs" not found'),
    ({"Name": 5}, 400, None),
    ({"Name": "ok", "Labels": ["x"]}, 400, None),
    ({"Name": "ok", "ClusterVolumeSpec": {}}, 503, None),
])
async def test_create_errors(client: TestClient, body: dict[str, Any], status: int,
                             message: str | None) -> None:
    resp = await client.post("/v1.50/volumes/create", json=body)
    assert resp.status == status
    if message is not None:
        assert (await resp.json())["message"] == message


async def test_in_use_and_filters(client: TestClient, service: VolumeService) -> None:
    service.create("used", reference="c" * 64)
    service.create("free", labels={"tier": "db"})
    resp = await client.delete("/volumes/used?force=1")
    assert resp.status == 409
    assert (await resp.json())["message"] == f"remove used: volume is in use - [{'c' * 64}]"

    async def names(filters: dict[str, list[str]]) -> list[str]:
        resp = await client.get("/volumes", params={"filters": json.dumps(filters)})
        assert resp.status == 200
        return [v["Name"] for v in (await resp.json())["Volumes"]]

    assert await names({"dangling": ["true"]}) == ["free"]
    assert await names({"dangling": ["false"]}) == ["used"]
    assert await names({"label": ["tier=db"]}) == ["free"]
    assert await names({"name": ["^us"]}) == ["used"]
    bad = await client.get("/volumes", params={"filters": json.dumps({"bogus": ["1"]})})
    assert bad.status == 400 and (await bad.json())["message"] == "invalid filter 'bogus'"


async def test_prune_per_api_version(client: TestClient, service: VolumeService) -> None:
    anon = service.create()
    service.create("named")
    resp = await client.post("/v1.50/volumes/prune")
    assert resp.status == 200
    assert await resp.json() == {"VolumesDeleted": [anon.name], "SpaceReclaimed": 0}
    resp = await client.post("/v1.41/volumes/prune")  # before 1.42: every unused volume
    assert await resp.json() == {"VolumesDeleted": ["named"], "SpaceReclaimed": 0}
    assert (await client.post("/v1.24/volumes/prune")).status == 404
    bad = await client.post("/volumes/prune", params={"filters": json.dumps({"dangling": ["1"]})})
    assert bad.status == 400 and (await bad.json())["message"] == "invalid filter 'dangling'"


async def test_update_is_swarm_only(client: TestClient, service: VolumeService) -> None:
    service.create("vol")
    resp = await client.put("/v1.50/volumes/vol?version=1", json={})
    assert resp.status == 503
    assert (await resp.json())["message"] == ("volume update only valid for cluster volumes, "
                                              "but swarm is unavailable")
    old = await client.put("/v1.41/volumes/vol?version=1", json={})
    assert old.status == 404 and (await old.json())["message"] == "page not found"


async def test_not_wired(aiohttp_client: Any, engine: Engine) -> None:
    client = await aiohttp_client(create_app(engine))
    assert (await client.get("/volumes")).status == 501


def test_usage_shape(service: VolumeService) -> None:
    vol = service.create("sized")
    body = render_usage(VolumeUsage(vol, 12, 2))
    assert body["UsageData"] == {"RefCount": 2, "Size": 12}
    assert _required("Volume") <= set(body)
