"""System endpoints against a real Engine (no containers needed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from runtime.engine import Engine
from runtime.linux.fsinfo import FS_NAMES

from tests.spec import load_spec


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine) -> TestClient:
    return await aiohttp_client(create_app(engine))


async def test_ping_get_and_head(client: TestClient) -> None:
    resp = await client.get("/_ping")
    assert resp.status == 200 and await resp.text() == "OK"
    for key, value in {"Builder-Version": "1", "Pragma": "no-cache",
                       "Cache-Control": "no-cache, no-store, must-revalidate"}.items():
        assert resp.headers[key] == value
    head = await client.head("/v1.44/_ping")
    assert head.status == 200 and head.headers["Api-Version"] == "1.50"


async def test_version_shape(client: TestClient) -> None:
    body = await (await client.get("/version")).json()
    assert body["ApiVersion"] == "1.50" and body["MinAPIVersion"] == "1.24"
    assert body["Os"] == "linux"
    assert [c["Name"] for c in body["Components"]] == ["Engine", "pydockerd"]
    required = load_spec()["definitions"]["SystemVersion"]["properties"].keys()
    # no build, no build time: omitted as dockerd omits an empty one (omitempty)
    assert set(required) - set(body) <= {"Experimental", "BuildTime"}
    assert "BuildTime" not in body and body["Components"][0]["Details"]["BuildTime"] == ""
    # the commit of the checkout it runs from (this one)
    head = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[4]), "rev-parse",
                           "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert len(body["GitCommit"]) == 7 and head.startswith(body["GitCommit"])
    assert body["Components"][0]["Details"]["GitCommit"] == body["GitCommit"]


async def test_info_has_every_spec_field_with_real_values(client: TestClient, engine: Engine) -> None:
    body = await (await client.get("/info")).json()
    spec_fields = set(load_spec()["definitions"]["SystemInfo"]["properties"])
    # fields dockerd omits when empty or that belong to features we don't have
    optional = {"ProductLicense", "DefaultAddressPools", "DiscoveredDevices", "Containerd",
                "KernelMemoryTCP", "BridgeNfIptables", "BridgeNfIp6tables", "Plugins",
                "FirewallBackend"}  # reported by the network service, absent in this engine
    assert spec_fields - set(body) <= optional
    assert body["NCPU"] >= 1 and body["MemTotal"] > 0
    assert body["CgroupVersion"] in ("1", "2") and body["OSType"] == "linux"
    assert body["DockerRootDir"] == str(engine.config.data_root)
    magic = subprocess.run(["stat", "-f", "-c", "%t", str(engine.config.data_root)],
                           capture_output=True, text=True, check=True).stdout
    assert body["DriverStatus"][0] == [
        "Backing Filesystem", FS_NAMES.get(int(magic, 16), "<unknown>")]
    # the runtime containers get by default is the one listed, and it is what runs them
    assert body["DefaultRuntime"] == "runc" and list(body["Runtimes"]) == ["runc"]
    runtime = body["Runtimes"]["runc"]
    assert os.access(runtime["path"], os.X_OK)
    assert runtime["runtimeArgs"][-2:] == ["-m", "runtime.process.supervisor"]
    again = await (await client.get("/info")).json()
    assert again["ID"] == body["ID"]


async def test_info_bridge_nf_fields_only_below_1_50(client: TestClient) -> None:
    old = await (await client.get("/v1.49/info")).json()
    new = await (await client.get("/v1.50/info")).json()
    assert "BridgeNfIptables" in old and "BridgeNfIptables" not in new


async def test_system_df_empty_arrays_and_type(client: TestClient) -> None:
    body = await (await client.get("/system/df")).json()
    assert body == {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}
    only = await (await client.get("/system/df?type=volume")).json()
    assert only == {"Volumes": []}
    bad = await client.get("/system/df?type=planet")
    assert bad.status == 400


async def test_events_since_until_replays_history_and_ends(client: TestClient, engine: Engine) -> None:
    start = time.time()
    engine.events.publish("image", "tag", "sha256:abc", {"name": "busybox:latest"})
    engine.events.publish("container", "create", "c1", {"name": "web", "image": "busybox"})
    until = time.time() + 0.01
    resp = await client.get(f"/events?since={start - 1:.9f}&until={until:.9f}")
    assert resp.status == 200
    lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert [e["Action"] for e in lines] == ["tag", "create"]
    container = lines[1]
    assert container["status"] == "create" and container["id"] == "c1" and container["from"] == "busybox"
    assert container["Actor"] == {"ID": "c1", "Attributes": {"name": "web", "image": "busybox"}}
    assert container["scope"] == "local" and container["time"] == container["timeNano"] // 10**9


async def test_events_streams_live_with_headers_first(client: TestClient, engine: Engine) -> None:
    resp = await client.get("/events?filters=" + json.dumps({"type": ["volume"]}))
    assert resp.status == 200  # headers arrived before any event
    engine.events.publish("container", "create", "c1")
    engine.events.publish("volume", "create", "v1")
    line = await asyncio.wait_for(resp.content.readline(), 5)
    event = json.loads(line)
    assert event["Type"] == "volume" and "status" not in event
    resp.close()


async def test_events_invalid_filter(client: TestClient) -> None:
    resp = await client.get("/events?filters=" + json.dumps({"colour": ["red"]}))
    assert resp.status == 400
    assert await resp.json() == {"message": "invalid filter 'colour'"}


@pytest.mark.parametrize("path", ["/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"])
async def test_swarm_family_is_503(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 503
    assert (await resp.json())["message"].startswith("This node is not a swarm manager.")


async def test_plugins_is_empty_list(client: TestClient) -> None:
    resp = await client.get("/plugins")
    assert resp.status == 200 and await resp.json() == []
