"""Routes of archive/export/changes, pause, top, stats, update and prune: parameters,
statuses, messages and JSON shapes (fake runtime without cgroups)."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

from aiohttp.test_utils import TestClient

from compat_api.routers.containers.files import stat_header
from compat_api.routers.containers.statsjson import render_stats
from runtime.containers.files import PathStat
from runtime.containers.model import Container
from runtime.containers.stats import BlkioEntry, CpuReading, Frame, MemoryReading, Sample
from tests.compat_api.routers.containers.test_containers import create
from tests.spec import load_spec

ZERO = "0001-01-01T00:00:00Z"


def test_stat_header_is_base64_json_in_go_order() -> None:
    header = stat_header(PathStat("f", 5, 0o644, 1_700_000_000_500_000_000, ""))
    raw = base64.b64decode(header).decode()
    assert raw == ('{"name":"f","size":5,"mode":420,"mtime":"2023-11-14T22:13:20.5Z",'
                   '"linkTarget":""}')
    assert json.loads(base64.b64decode(stat_header(PathStat("/", 0, 0, 0, ""))))["mtime"] == \
        "1970-01-01T00:00:00Z"


async def test_archive_parameters_and_lookup(client: TestClient) -> None:
    await create(client, name="arch")
    for method in ("GET", "PUT"):
        resp = await client.request(method, "/v1.50/containers/arch/archive")
        assert resp.status == 400
        assert (await resp.json())["message"] == "bad parameter: pathcannot be empty"
    resp = await client.get("/v1.50/containers/nope/archive?path=/")
    assert resp.status == 404 and (await resp.json())["message"] == "No such container: nope"
    resp = await client.head("/v1.50/containers/nope/archive?path=/")
    assert resp.status == 404


async def test_changes_of_a_fresh_container_is_null(client: TestClient) -> None:
    await create(client, name="fresh")
    resp = await client.get("/v1.50/containers/fresh/changes")
    assert resp.status == 200 and await resp.text() == "null\n"
    assert (await client.get("/v1.50/containers/nope/changes")).status == 404


async def test_pause_unpause_errors(client: TestClient) -> None:
    cid = await create(client, name="pz")
    resp = await client.post("/v1.50/containers/pz/pause")
    assert resp.status == 409
    assert (await resp.json())["message"] == f"Container {cid} is not running"
    resp = await client.post("/v1.50/containers/pz/unpause")
    assert resp.status == 500
    assert (await resp.json())["message"] == f"Container {cid} is not paused"
    assert (await client.post("/v1.50/containers/nope/pause")).status == 404


async def test_top_of_a_stopped_container(client: TestClient) -> None:
    cid = await create(client, name="tp")
    resp = await client.get("/v1.50/containers/tp/top?ps_args=aux")
    assert resp.status == 409
    assert (await resp.json())["message"] == f"Container {cid} is not running"


async def test_stats_of_a_stopped_container(client: TestClient) -> None:
    cid = await create(client, name="st")
    resp = await client.get("/v1.50/containers/st/stats?stream=0")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    body = await resp.json()
    assert (body["read"], body["preread"], body["name"], body["id"]) == (ZERO, ZERO, "/st", cid)
    assert body["cpu_stats"]["cpu_usage"]["total_usage"] == 0 and body["memory_stats"] == {}
    assert list(body) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs",
                          "storage_stats", "cpu_stats", "precpu_stats", "memory_stats",
                          "name", "id"]
    resp = await client.get("/v1.50/containers/st/stats?stream=1&one-shot=1")
    assert resp.status == 400
    assert (await client.get("/v1.50/containers/nope/stats?stream=0")).status == 404


def test_render_stats_shape() -> None:
    container = Container.__new__(Container)
    object.__setattr__(container, "name", "/c")
    object.__setattr__(container, "id", "f" * 64)
    sample = Sample(
        1_700_000_001_000_000_000,
        CpuReading(200, 10, 190, (150, 50), 9_000, 2, 3, 1, 7),
        MemoryReading(100, 150, 0, 1 << 30, MappingProxyType({"rss": 1, "cache": 2})),
        pids_current=2, pids_limit=0,
        blkio=MappingProxyType({"io_service_bytes_recursive": (BlkioEntry(8, 0, "Read", 5),),
                                "io_serviced_recursive": ()}),
        networks=MappingProxyType({"eth0": {"rx_bytes": 1}}))
    previous = Sample(1_700_000_000_000_000_000, CpuReading(100, 5, 95, (), 8_000, 2),
                      MemoryReading())
    body = render_stats(Frame(container, sample, previous))
    assert body["read"] == "2023-11-14T22:13:21Z" and body["preread"] == "2023-11-14T22:13:20Z"
    assert body["cpu_stats"]["cpu_usage"] == {"total_usage": 200, "percpu_usage": [150, 50],
                                              "usage_in_kernelmode": 10, "usage_in_usermode": 190}
    assert body["cpu_stats"]["system_cpu_usage"] == 9_000 and body["cpu_stats"]["online_cpus"] == 2
    assert body["cpu_stats"]["throttling_data"] == {"periods": 3, "throttled_periods": 1,
                                                    "throttled_time": 7}
    assert "percpu_usage" not in body["precpu_stats"]["cpu_usage"]
    assert body["memory_stats"] == {"usage": 100, "max_usage": 150,
                                    "stats": {"cache": 2, "rss": 1}, "limit": 1 << 30}
    assert list(body["memory_stats"]["stats"]) == ["cache", "rss"]  # sorted like Go maps
    assert body["pids_stats"] == {"current": 2}
    blkio = body["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "Read",
                                                    "value": 5}]
    assert blkio["io_serviced_recursive"] == [] and blkio["sectors_recursive"] is None
    assert body["networks"] == {"eth0": {"rx_bytes": 1}}
    assert set(body) == set(load_spec()["definitions"]["ContainerStatsResponse"]["properties"])


async def test_update_answers_and_keeps_restart_policy(client: TestClient) -> None:
    await create(client, name="up")
    resp = await client.post("/v1.50/containers/up/update",
                             json={"RestartPolicy": {"Name": "always"}})
    assert resp.status == 200 and await resp.json() == {"Warnings": None}
    resp = await client.post("/v1.50/containers/up/update", json={"CpuShares": 512})
    assert resp.status == 200
    inspect = await (await client.get("/v1.50/containers/up/json")).json()
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert inspect["HostConfig"]["CpuShares"] == 512
    resp = await client.post("/v1.50/containers/up/update", json={"Memory": 1000})
    assert resp.status == 400
    assert (await resp.json())["message"] == "Minimum memory limit allowed is 6MB"
    resp = await client.post("/v1.50/containers/nope/update", json={})
    assert resp.status == 404


async def test_prune_answers(client: TestClient) -> None:
    cid = await create(client, name="pr")
    resp = await client.post("/v1.50/containers/prune",
                             params={"filters": json.dumps({"label": ["nothing=here"]})})
    assert resp.status == 200
    assert await resp.json() == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    resp = await client.post("/v1.50/containers/prune")
    assert (await resp.json())["ContainersDeleted"] == [cid]
    resp = await client.post("/v1.50/containers/prune",
                             params={"filters": json.dumps({"bogus": ["1"]})})
    assert resp.status == 400
