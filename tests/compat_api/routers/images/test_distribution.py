"""Pull, push, /distribution and /auth over HTTP, with an in-process registry behind the
real ImageService."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.routers.images.distribution import pull_reference
from runtime.engine import Engine
from runtime.errors import InvalidParameter
from runtime.images.service import ImageService
from tests.runtime.archive.tarbuild import build, dir_, reg
from tests.runtime.images.fakeregistry import FakeRegistry, publish_image
from tests.spec import load_spec


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeRegistry:
    registry = FakeRegistry()
    server = await aiohttp_server(registry.app())
    registry.base = f"http://127.0.0.1:{server.port}"
    return registry


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine, tmp_path: Path) -> TestClient:
    engine.images = ImageService(tmp_path / "images", engine.events)  # type: ignore[attr-defined]
    return await aiohttp_client(create_app(engine))


def host(fake: FakeRegistry) -> str:
    return fake.base.removeprefix("http://")


def lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\r\n")
    return [json.loads(line) for line in body.split(b"\r\n") if line.strip()]


def xauth(doc: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(doc or {}).encode()).decode()}


def layer(name: str = "f") -> bytes:
    return build([dir_("d"), reg(f"d/{name}", name.encode() * 50)])


def test_pull_reference_combines_from_image_and_tag() -> None:
    digest = "sha256:" + "a" * 64
    assert str(pull_reference("docker.io/library/alpine", "latest")[0]) == "docker.io/library/alpine:latest"
    assert pull_reference("alpine", "")[1] is True  # docker pull -a
    assert pull_reference("alpine:", "")[1] is True
    ref, all_tags = pull_reference("reg:5000/x", digest)
    assert (ref.digest, ref.tag, all_tags) == (digest, None, False)
    assert pull_reference("reg:5000/x:v1", "")[0].tag == "v1"
    with pytest.raises(InvalidParameter):
        pull_reference("reg:5000/x", "bad tag!")


async def test_pull_streams_dockerd_records(client: TestClient, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "app", "v1", [layer()])
    resp = await client.post(f"/v1.50/images/create?fromImage={quote(host(fake) + '/app')}&tag=v1", headers=xauth())
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    messages = lines(await resp.read())
    short = pub.layer_digests[0][7:19]
    assert messages[0] == {"status": "Pulling from app", "id": "v1"}
    assert messages[1] == {"status": "Pulling fs layer", "progressDetail": {}, "id": short}
    downloading = next(m for m in messages if m["status"] == "Downloading")
    assert set(downloading) == {"status", "progressDetail", "progress", "id"}
    assert downloading["progressDetail"]["total"] == len(fake.blobs[pub.layer_digests[0]])
    assert {"status": "Pull complete", "progressDetail": {}, "id": short} in messages
    assert messages[-2:] == [{"status": f"Digest: {pub.manifest_digest}"},
                             {"status": f"Status: Downloaded newer image for {host(fake)}/app:v1"}]  # fmt: skip
    inspect = await (await client.get(f"/v1.50/images/{host(fake)}/app:v1/json")).json()
    assert inspect["Id"] == pub.config_digest
    assert inspect["RepoDigests"] == [f"{host(fake)}/app@{pub.manifest_digest}"]


async def test_pull_errors_before_streaming_are_http_errors(client: TestClient, fake: FakeRegistry) -> None:
    name = f"{host(fake)}/missing"
    resp = await client.post(f"/v1.50/images/create?fromImage={quote(name)}&tag=latest", headers=xauth())
    assert resp.status == 404
    assert (await resp.json())["message"] == f"manifest for {name}:latest not found: manifest unknown: manifest unknown"
    bad = await client.post("/v1.50/images/create?fromImage=Bad/Name&tag=latest")
    assert bad.status == 400
    fake.auth = "basic"
    denied = await client.post(f"/v1.50/images/create?fromImage={quote(name)}&tag=latest", headers=xauth())
    assert denied.status == 500
    assert (await denied.json())["message"].endswith("no basic auth credentials")


async def test_pull_error_after_streaming_started_is_in_band(client: TestClient, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "corrupt", "latest", [layer()])
    fake.corrupt.add(pub.layer_digests[0])
    resp = await client.post(f"/v1.50/images/create?fromImage={quote(host(fake) + '/corrupt')}&tag=latest", headers=xauth())
    assert resp.status == 200
    messages = lines(await resp.read())
    text = f"filesystem layer verification failed for digest {pub.layer_digests[0]}"
    assert messages[0]["status"] == "Pulling from corrupt"
    assert messages[-1] == {"errorDetail": {"message": text}, "error": text}


async def test_pull_uses_x_registry_auth(client: TestClient, fake: FakeRegistry) -> None:
    fake.auth = "basic"
    publish_image(fake, "private", "latest", [layer()])
    creds = xauth({"username": "alice", "password": "secret", "serveraddress": host(fake)})
    resp = await client.post(f"/v1.50/images/create?fromImage={quote(host(fake) + '/private')}&tag=latest", headers=creds)
    assert resp.status == 200
    assert lines(await resp.read())[-1]["status"].startswith("Status: Downloaded newer image")


async def test_push_stream_and_errors(client: TestClient, fake: FakeRegistry) -> None:
    repo = f"{host(fake)}/pushed"
    created = await client.post(f"/v1.50/images/create?fromSrc=-&repo={quote(repo)}&tag=t1", data=layer("p"),
                                headers={"Content-Type": "application/x-tar"})  # fmt: skip
    assert created.status == 200
    resp = await client.post(f"/v1.50/images/{repo}/push?tag=t1", headers=xauth())
    assert resp.status == 200
    messages = lines(await resp.read())
    assert messages[0] == {"status": f"The push refers to repository [{repo}]"}
    aux = messages[-1]
    assert set(aux) == {"progressDetail", "aux"} and aux["progressDetail"] == {}
    assert aux["aux"]["Tag"] == "t1" and aux["aux"]["Digest"] in fake.manifests
    assert messages[-2] == {"status": f"t1: digest: {aux['aux']['Digest']} size: {aux['aux']['Size']}"}

    missing = await client.post(f"/v1.50/images/{repo}/push?tag=nope", headers=xauth())
    assert missing.status == 200
    text = f"tag does not exist: {repo}:nope"
    assert lines(await missing.read())[-1] == {"errorDetail": {"message": text}, "error": text}
    invalid = await client.post("/v1.50/images/UPPER/push?tag=x", headers=xauth())
    assert invalid.status == 400


async def test_distribution_inspect(client: TestClient, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "dist", "latest", [layer()])
    resp = await client.get(f"/v1.50/distribution/{host(fake)}/dist/json", headers=xauth())
    assert resp.status == 200
    body = await resp.json()
    assert body == {
        "Descriptor": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "digest": pub.manifest_digest, "size": len(pub.manifest)},
        "Platforms": [{"architecture": "amd64", "os": "linux"}],
    }  # fmt: skip
    spec = load_spec()["definitions"]["DistributionInspect"]
    assert set(spec["required"]) <= set(body)
    missing = await client.get(f"/v1.50/distribution/{host(fake)}/dist:nope/json")
    assert missing.status == 404
    assert (await missing.json())["message"] == "manifest unknown: manifest unknown"


async def test_auth_endpoint(client: TestClient, fake: FakeRegistry) -> None:
    fake.auth = "basic"
    ok = await client.post("/v1.50/auth", json={"username": "alice", "password": "secret", "serveraddress": host(fake)})
    assert ok.status == 200
    assert await ok.json() == {"IdentityToken": "", "Status": "Login Succeeded"}
    bad = await client.post("/v1.50/auth", json={"username": "alice", "password": "x", "serveraddress": host(fake)})
    assert bad.status == 500
    assert (await bad.json())["message"] == f"login attempt to {fake.base}/v2/ failed with status: 401 Unauthorized"


async def test_client_leaving_mid_pull_stops_it(client: TestClient, fake: FakeRegistry, engine: Engine) -> None:
    config_digest = publish_image(fake, "slow", "latest", [layer("s")]).config_digest
    fake.blob_delay = 0.5
    resp = await client.post(f"/v1.50/images/create?fromImage={quote(host(fake) + '/slow')}&tag=latest", headers=xauth())
    assert resp.status == 200
    first = await resp.content.readline()
    assert json.loads(first)["status"] == "Pulling from slow"
    resp.close()
    service = engine.images
    assert service is not None
    for _ in range(50):
        if not service._inflight:
            break
        await asyncio.sleep(0.05)
    assert not service._inflight  # the pull was stopped and let go of its layers
    assert not service.store.exists(config_digest)
    # and the daemon keeps serving pulls
    fake.blob_delay = 0
    again = await client.post(f"/v1.50/images/create?fromImage={quote(host(fake) + '/slow')}&tag=latest", headers=xauth())
    assert lines(await again.read())[-1]["status"].startswith("Status: Downloaded newer image")
