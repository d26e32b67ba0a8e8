"""The /images endpoints against the real ImageService (layers on overlayfs)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from runtime.engine import Engine
from runtime.images.service import ImageService
from tests.runtime.images.conftest import rootfs_tar
from tests.spec import load_spec


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine, tmp_path: Path) -> TestClient:
    engine.images = ImageService(tmp_path / "images", engine.events)  # type: ignore[attr-defined]
    return await aiohttp_client(create_app(engine))


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.split(b"\r\n") if line.strip()]


async def do_import(client: TestClient, repo: str = "busybox", tag: str = "", marker: bytes = b"v1", **params: Any) -> str:
    query: list[tuple[str, str]] = [("fromSrc", "-"), ("repo", repo)]
    if tag:
        query.append(("tag", tag))
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            query.append((key, v))
    resp = await client.post("/v1.50/images/create", params=query, data=rootfs_tar(marker),
                             headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/json")
    (msg,) = lines(await resp.read())
    return str(msg["status"])


async def test_import_list_inspect(client: TestClient) -> None:
    image_id = await do_import(client, changes=['CMD ["sh"]', "LABEL a=b"], message="hello")
    assert image_id.startswith("sha256:") and len(image_id) == 71
    listed = await (await client.get("/v1.50/images/json")).json()
    spec = load_spec()["definitions"]
    assert len(listed) == 1 and set(spec["ImageSummary"]["required"]) <= set(listed[0])
    row = listed[0]
    assert row["Id"] == image_id and row["RepoTags"] == ["busybox:latest"] and row["RepoDigests"] == []
    assert row["Labels"] == {"a": "b"} and row["Containers"] == -1 and row["SharedSize"] == -1
    assert "VirtualSize" not in row
    old = (await (await client.get("/v1.41/images/json")).json())[0]
    assert old["VirtualSize"] == row["Size"]

    body = await (await client.get("/v1.50/images/busybox/json")).json()
    assert body["Id"] == image_id and body["Comment"] == "hello"
    assert body["Config"] == {"Cmd": ["sh"], "Labels": {"a": "b"}}  # OCI fields only at 1.50
    assert body["RootFS"]["Type"] == "layers" and len(body["RootFS"]["Layers"]) == 1
    assert body["GraphDriver"]["Name"] == "overlay2" and body["Os"] == "linux"
    assert "Container" not in body and "VirtualSize" not in body
    assert set(body) <= set(spec["ImageInspect"]["properties"])
    legacy = await (await client.get(f"/v1.43/images/{image_id[7:19]}/json")).json()
    assert legacy["Config"]["Hostname"] == "" and legacy["Config"]["Cmd"] == ["sh"]
    assert legacy["ContainerConfig"]["Cmd"] is None and legacy["VirtualSize"] == body["Size"]

    missing = await client.get("/v1.50/images/nosuch/json")
    assert missing.status == 404 and (await missing.json())["message"] == "No such image: nosuch:latest"
    bad = await client.get("/v1.50/images/NoSuch/json")
    assert bad.status == 400


async def test_import_rejects_bad_input_before_reading(client: TestClient) -> None:
    resp = await client.post("/images/create", params={"fromSrc": "-", "repo": "Bad"}, data=b"x")
    assert resp.status == 400 and "must be lowercase" in (await resp.json())["message"]
    resp = await client.post("/images/create", params={"fromSrc": "-", "changes": "RUN x"}, data=b"x")
    assert resp.status == 400 and (await resp.json())["message"] == "run is not a valid change command"


async def test_tag_names_with_slashes_history_and_delete(client: TestClient) -> None:
    image_id = await do_import(client)
    resp = await client.post("/v1.50/images/busybox/tag", params={"repo": "localhost:5000/a/b", "tag": "t"})
    assert resp.status == 201
    body = await (await client.get("/v1.50/images/localhost:5000/a/b:t/json")).json()
    assert body["Id"] == image_id and body["RepoTags"] == ["busybox:latest", "localhost:5000/a/b:t"]
    hist = await (await client.get("/v1.50/images/localhost:5000/a/b:t/history")).json()
    assert hist[0]["Id"] == image_id and hist[0]["Tags"] == ["busybox:latest", "localhost:5000/a/b:t"]
    assert hist[0]["Comment"] == "Imported from -"
    conflict = await client.delete(f"/v1.50/images/{image_id[7:19]}")
    assert conflict.status == 409 and "must be forced" in (await conflict.json())["message"]
    resp = await client.delete("/v1.50/images/localhost:5000/a/b:t")
    assert await resp.json() == [{"Untagged": "localhost:5000/a/b:t"}]
    resp = await client.delete(f"/v1.50/images/{image_id}")
    records = await resp.json()
    assert records[0] == {"Untagged": "busybox:latest"} and {"Deleted": image_id} in records
    assert await (await client.get("/v1.50/images/json")).json() == []


async def test_prune(client: TestClient) -> None:
    await do_import(client, repo="", marker=b"dangling")
    resp = await client.post("/v1.50/images/prune", params={"filters": json.dumps({"dangling": ["true"]})})
    body = await resp.json()
    assert len(body["ImagesDeleted"]) == 2 and body["SpaceReclaimed"] > 0
    empty = await (await client.post("/v1.50/images/prune")).json()
    assert empty == {"ImagesDeleted": None, "SpaceReclaimed": 0}


async def test_save_and_load_over_http(client: TestClient, engine: Engine) -> None:
    image_id = await do_import(client)
    resp = await client.get("/v1.50/images/busybox/get")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-tar"
    archive = await resp.read()
    names = tarfile.open(fileobj=io.BytesIO(archive)).getnames()
    assert {"index.json", "manifest.json", "oci-layout", "repositories"} <= set(names)
    many = await client.get("/v1.50/images/get", params=[("names", "busybox"), ("names", image_id)])
    assert many.status == 200 and len(await many.read()) > 0
    missing = await client.get("/v1.50/images/nosuch/get")
    assert missing.status == 404

    await client.delete("/v1.50/images/busybox")
    resp = await client.post("/v1.50/images/load", data=archive, headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200
    msgs = lines(await resp.read())
    assert msgs[-1] == {"stream": "Loaded image: busybox:latest\n"}
    assert any(m.get("status") == "Loading layer" for m in msgs)
    quiet = await client.post("/v1.50/images/load", params={"quiet": "1"}, data=archive)
    assert lines(await quiet.read()) == [{"stream": "Loaded image: busybox:latest\n"}]
    # dockerd answers 200 and reports the failure in the stream
    garbage = await client.post("/v1.50/images/load", data=b"\x00garbage" * 100)
    assert garbage.status == 200
    failure = lines(await garbage.read())[-1]
    assert failure["error"] and failure["errorDetail"]["message"] == failure["error"]
    assert (await (await client.get("/v1.50/images/busybox/json")).json())["Id"] == image_id


async def test_search_fails_fast(client: TestClient) -> None:
    resp = await client.get("/v1.50/images/search", params={"term": "busybox"})
    assert resp.status == 503 and "index.docker.io" in (await resp.json())["message"]


async def test_pull_from_an_unreachable_registry_fails_before_streaming(client: TestClient) -> None:
    # pulling is implemented (tests in test_distribution.py); a closed loopback port fails at once
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    resp = await client.post("/v1.50/images/create", params={"fromImage": f"127.0.0.1:{port}/x", "tag": "latest"})
    assert resp.status == 500
    assert (await resp.json())["message"].endswith(f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_hostile_archives_are_contained_and_the_daemon_keeps_serving(client: TestClient, tmp_path: Path) -> None:
    from tests.runtime.archive.tarbuild import build, hard, reg, sym

    outside = tmp_path / "outside-victim"
    outside.write_text("original")
    hostile = {
        "dotdot": build([reg("../../../../../" + str(outside).lstrip("/"), b"pwned")]),
        "abs": build([reg(str(outside), b"pwned")]),
        "symlink": build([sym("lnk", str(tmp_path)), reg("lnk/outside-victim", b"pwned")]),
        "hardlink": build([hard("hl", "../../../../../" + str(outside).lstrip("/"))]),
        "longname": build([reg("d/" * 1000 + "f", b"x")]),
    }
    statuses = {}
    for name, data in hostile.items():
        resp = await client.post("/v1.50/images/create", params={"fromSrc": "-", "repo": f"hostile-{name}"}, data=data)
        statuses[name] = resp.status
        await resp.read()
    # contained (imported, with the file inside the layer) or refused: never written outside
    assert statuses["dotdot"] == 200 and statuses["abs"] == 200 and statuses["longname"] == 200
    assert statuses["symlink"] >= 400 and statuses["hardlink"] >= 400
    assert outside.read_text() == "original" and outside.stat().st_nlink == 1
    ping = await client.get("/_ping")
    assert ping.status == 200
    listed = await (await client.get("/v1.50/images/json")).json()
    assert sorted(t for row in listed for t in row["RepoTags"]) == [
        "hostile-abs:latest", "hostile-dotdot:latest", "hostile-longname:latest"]
    # deleting the 1000-level-deep layer works too (no recursion limit in layer removal)
    resp = await client.delete("/v1.50/images/hostile-longname")
    assert resp.status == 200 and len(await resp.json()) == 3
