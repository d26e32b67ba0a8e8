"""Registry operations through docker-py (``images.pull`` / ``push``, ``login``,
``get_registry_data``) and the raw wire (status codes, progress records) against a local
``docker-registry``; plus interoperability with a reference engine through the registry.

Checked against dockerd 20.10, then run against pydockerd.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import docker
import docker.errors
import pytest

from conformance.imagetools import (
    IMAGE_ID,
    json_stream,
    tiny_layer,
    unique_repo,
)
from conformance.rawhttp import RawHTTP
from conformance.registry import (
    AUTH_PASSWORD,
    AUTH_USER,
    LocalRegistry,
    auth_registry,
    registry,
    remove_repository,
)

__all__ = ["auth_registry", "registry"]  # fixtures

NO_AUTH = base64.urlsafe_b64encode(b"{}").decode()


def _auth_header(user: str, password: str, server: str) -> str:
    doc = {"username": user, "password": password, "serveraddress": server}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


@pytest.fixture
def repo(registry: LocalRegistry, api_client: docker.APIClient) -> Iterator[str]:
    name = f"{registry.address}/{unique_repo('conf-regsdk')}"
    yield name
    remove_repository(api_client, name)


def _import(api: docker.APIClient, repo: str, tag: str = "latest") -> str:
    out = api.import_image_from_data(tiny_layer(), repository=repo, tag=tag, changes=['CMD ["sh"]'])
    image_id = json.loads(out.strip().splitlines()[-1])["status"]
    assert IMAGE_ID.match(image_id), out
    return str(image_id)


def _push(raw: RawHTTP, repo: str, tag: str, auth: str = NO_AUTH) -> list[dict[str, Any]]:
    resp = raw.request("POST", f"/images/{repo}/push?tag={tag}", headers={"X-Registry-Auth": auth})
    assert resp.status == 200, resp.describe()
    assert resp.header("Content-Type") == "application/json"
    return json_stream(resp.body)


# --- docker-py ------------------------------------------------------------------------------


def test_sdk_push_and_pull(client: docker.DockerClient, api_client: docker.APIClient, repo: str) -> None:
    image_id = _import(api_client, repo)
    lines = [json.loads(line) for line in client.images.push(repo, tag="latest").splitlines() if line.strip()]
    assert not [m for m in lines if "error" in m], lines
    aux = [m["aux"] for m in lines if "aux" in m]
    assert len(aux) == 1 and aux[0]["Tag"] == "latest" and re.fullmatch(r"sha256:[0-9a-f]{64}", aux[0]["Digest"])
    client.images.remove(f"{repo}:latest")
    image = client.images.pull(repo, tag="latest")
    assert image.id == image_id
    assert f"{repo}:latest" in image.tags
    assert f"{repo}@{aux[0]['Digest']}" in image.attrs["RepoDigests"]


def test_sdk_push_stream_decoded(api_client: docker.APIClient, repo: str) -> None:
    _import(api_client, repo, "s")
    messages = list(api_client.push(repo, tag="s", stream=True, decode=True))
    statuses = [m.get("status") for m in messages]
    assert statuses[0] == f"The push refers to repository [{repo}]"
    assert "Preparing" in statuses and "Pushed" in statuses
    assert any(s and s.startswith("s: digest: sha256:") for s in statuses)


def test_sdk_pull_all_tags(client: docker.DockerClient, api_client: docker.APIClient, repo: str) -> None:
    image_id = _import(api_client, repo, "x")
    api_client.tag(f"{repo}:x", repo, "y")
    for tag in ("x", "y"):
        list(api_client.push(repo, tag=tag, stream=True))
    images = client.images.pull(repo, all_tags=True)
    assert isinstance(images, list)
    assert {i.id for i in images} == {image_id}


def test_sdk_pull_missing_raises_not_found(client: docker.DockerClient, registry: LocalRegistry) -> None:
    with pytest.raises(docker.errors.NotFound) as info:
        client.images.pull(f"{registry.address}/{unique_repo('conf-none')}", tag="latest")
    assert "manifest unknown" in str(info.value)


def test_sdk_login_and_private_push_pull(
    docker_host: str, auth_registry: LocalRegistry, api_client: docker.APIClient
) -> None:
    repo = f"{auth_registry.address}/{unique_repo('conf-regauth')}"
    client = docker.DockerClient(base_url=docker_host, version="auto", timeout=60)
    try:
        image_id = _import(api_client, repo)
        answer = client.login(AUTH_USER, AUTH_PASSWORD, registry=f"http://{auth_registry.address}", reauth=True)
        assert answer["Status"] == "Login Succeeded"
        # docker-py keeps the login and sends it as X-Registry-Auth from now on
        out = client.images.push(repo, tag="latest")
        assert "latest: digest: sha256:" in out, out
        client.images.remove(f"{repo}:latest")
        assert client.images.pull(repo, tag="latest").id == image_id
        creds = {"username": AUTH_USER, "password": AUTH_PASSWORD}
        data = client.images.get_registry_data(f"{repo}:latest", auth_config=creds)
        assert data.has_platform("linux/amd64")
    finally:
        client.close()
        remove_repository(api_client, repo)


def test_sdk_login_wrong_password_raises(docker_host: str, auth_registry: LocalRegistry) -> None:
    client = docker.DockerClient(base_url=docker_host, version="auto", timeout=60)
    try:
        with pytest.raises(docker.errors.APIError) as info:
            client.login(AUTH_USER, "wrong", registry=f"http://{auth_registry.address}", reauth=True)
        assert "401 Unauthorized" in str(info.value)
    finally:
        client.close()


def test_sdk_registry_data(client: docker.DockerClient, api_client: docker.APIClient, repo: str) -> None:
    _import(api_client, repo)
    list(api_client.push(repo, tag="latest", stream=True))
    data = client.images.get_registry_data(f"{repo}:latest")
    digest = api_client.inspect_image(f"{repo}:latest")["RepoDigests"][0].split("@")[1]
    assert data.id == digest
    assert data.has_platform("linux/amd64")
    assert not data.has_platform("linux/s390x")


# --- the wire -------------------------------------------------------------------------------


def test_push_stream_records(raw: RawHTTP, api_client: docker.APIClient, repo: str) -> None:
    _import(api_client, repo)
    layer = api_client.inspect_image(f"{repo}:latest")["RootFS"]["Layers"][0][7:19]
    messages = _push(raw, repo, "latest")
    assert messages[0] == {"status": f"The push refers to repository [{repo}]"}
    assert {"status": "Preparing", "progressDetail": {}, "id": layer} in messages
    pushing = [m for m in messages if m.get("status") == "Pushing"]
    assert pushing and all(m["id"] == layer and m["progressDetail"]["total"] > 0 for m in pushing)
    assert all(m["progress"].startswith("[") for m in pushing)
    assert {"status": "Pushed", "progressDetail": {}, "id": layer} in messages
    digest_line = messages[-2]["status"]
    m = re.fullmatch(r"latest: digest: (sha256:[0-9a-f]{64}) size: (\d+)", digest_line)
    assert m, messages
    assert messages[-1] == {"progressDetail": {}, "aux": {"Tag": "latest", "Digest": m.group(1), "Size": int(m.group(2))}}
    again = _push(raw, repo, "latest")
    assert {"status": "Layer already exists", "progressDetail": {}, "id": layer} in again


def test_pull_stream_records(raw: RawHTTP, api_client: docker.APIClient, repo: str, engine_kind: str) -> None:
    _import(api_client, repo)
    digest = _push(raw, repo, "latest")[-1]["aux"]["Digest"]
    api_client.remove_image(f"{repo}:latest")
    path = repo.split("/", 1)[1]
    resp = raw.request(
        "POST", f"/images/create?fromImage={quote(repo, safe='')}&tag=latest", headers={"X-Registry-Auth": NO_AUTH}
    )
    assert resp.status == 200, resp.describe()
    messages = json_stream(resp.body)
    assert messages[0] == {"status": f"Pulling from {path}", "id": "latest"}
    layer = messages[1]["id"]
    assert messages[1] == {"status": "Pulling fs layer", "progressDetail": {}, "id": layer}
    statuses = [m["status"] for m in messages if m.get("id") == layer]
    steps = ["Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"]
    assert set(statuses) <= set(steps), statuses
    assert [steps.index(s) for s in statuses] == sorted(steps.index(s) for s in statuses), statuses
    # dockerd may skip the intermediate lines of a blob this small; pydockerd always sends them
    required = steps[2:] if engine_kind == "pydockerd" else ["Download complete", "Pull complete"]
    for expected in required:
        if expected != "Waiting":
            assert expected in statuses, statuses
    for m in messages:
        if m.get("status") in ("Downloading", "Extracting"):
            assert m["progressDetail"]["total"] > 0 and m["progress"].startswith("["), m
    assert messages[-2:] == [
        {"status": f"Digest: {digest}"},
        {"status": f"Status: Downloaded newer image for {repo}:latest"},
    ]


def test_pull_of_missing_manifest_is_404_before_streaming(raw: RawHTTP, registry: LocalRegistry) -> None:
    name = f"{registry.address}/{unique_repo('conf-none')}"
    resp = raw.request(
        "POST", f"/images/create?fromImage={quote(name, safe='')}&tag=latest", headers={"X-Registry-Auth": NO_AUTH}
    )
    assert resp.status == 404, resp.describe()
    assert resp.error_message() == f"manifest for {name}:latest not found: manifest unknown: manifest unknown"


def test_pull_of_invalid_reference_is_400(raw: RawHTTP, registry: LocalRegistry) -> None:
    resp = raw.post(f"/images/create?fromImage={quote(registry.address + '/Bad', safe='')}&tag=latest")
    assert resp.status == 400, resp.describe()
    # dockerd 20.10: "...: repository name must be lowercase"; newer: "...: repository name (Bad) must be lowercase"
    assert resp.error_message().startswith("invalid reference format: repository name")
    assert resp.error_message().endswith("must be lowercase")


def test_push_of_missing_tag_reports_in_band(raw: RawHTTP, api_client: docker.APIClient, repo: str) -> None:
    _import(api_client, repo)
    messages = _push(raw, repo, "nosuchtag")
    assert messages[0] == {"status": f"The push refers to repository [{repo}]"}
    text = f"tag does not exist: {repo}:nosuchtag"
    assert messages[-1] == {"errorDetail": {"message": text}, "error": text}


def test_push_of_unknown_repository_reports_in_band(raw: RawHTTP, registry: LocalRegistry) -> None:
    repo = f"{registry.address}/{unique_repo('conf-nothing')}"
    messages = _push(raw, repo, "")
    text = f"An image does not exist locally with the tag: {repo}"
    assert messages[-1] == {"errorDetail": {"message": text}, "error": text}


def test_distribution_inspect(raw: RawHTTP, api_client: docker.APIClient, repo: str) -> None:
    _import(api_client, repo)
    aux = _push(raw, repo, "latest")[-1]["aux"]
    resp = raw.get(f"/distribution/{repo}:latest/json", headers={"X-Registry-Auth": NO_AUTH})
    assert resp.status == 200, resp.describe()
    assert resp.json() == {
        "Descriptor": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": aux["Digest"],
            "size": aux["Size"],
        },
        "Platforms": [{"architecture": "amd64", "os": "linux"}],
    }
    missing = raw.get(f"/distribution/{repo}:nosuchtag/json", headers={"X-Registry-Auth": NO_AUTH})
    assert missing.status == 404, missing.describe()
    assert missing.error_message() == "manifest unknown: manifest unknown"


def test_auth_endpoint(raw: RawHTTP, auth_registry: LocalRegistry) -> None:
    good = raw.post("/auth", {"username": AUTH_USER, "password": AUTH_PASSWORD, "serveraddress": auth_registry.address})
    assert good.status == 200, good.describe()
    assert good.json() == {"IdentityToken": "", "Status": "Login Succeeded"}
    bad = raw.post("/auth", {"username": AUTH_USER, "password": "nope", "serveraddress": auth_registry.address})
    assert bad.status >= 400, bad.describe()
    assert bad.error_message() == (
        f"login attempt to http://{auth_registry.address}/v2/ failed with status: 401 Unauthorized"
    )


def test_private_pull_without_credentials_fails(raw: RawHTTP, auth_registry: LocalRegistry) -> None:
    name = f"{auth_registry.address}/{unique_repo('conf-priv')}"
    resp = raw.request(
        "POST", f"/images/create?fromImage={quote(name, safe='')}&tag=latest", headers={"X-Registry-Auth": NO_AUTH}
    )
    assert resp.status == 500, resp.describe()
    assert resp.error_message() == f'Head "http://{auth_registry.address}/v2/{name.split("/", 1)[1]}/manifests/latest": no basic auth credentials'


# --- interoperability with a reference engine ----------------------------------------------


@pytest.fixture
def reference_api(reference_host: str) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=reference_host, version="auto", timeout=60)
    yield c
    c.close()


@pytest.mark.reference
@pytest.mark.parametrize("direction", ["engine-to-reference", "reference-to-engine"])
def test_image_moved_through_the_registry_keeps_its_id(
    direction: str, api_client: docker.APIClient, reference_api: docker.APIClient, registry: LocalRegistry
) -> None:
    src, dst = (api_client, reference_api) if direction == "engine-to-reference" else (reference_api, api_client)
    repo = f"{registry.address}/{unique_repo('conf-interop')}"
    try:
        image_id = _import(src, repo)
        src_image = src.inspect_image(f"{repo}:latest")
        messages = list(src.push(repo, tag="latest", stream=True, decode=True))
        assert not [m for m in messages if "error" in m], messages
        digest = messages[-1]["aux"]["Digest"]
        remove_repository(dst, repo)
        pulled = list(dst.pull(repo, tag="latest", stream=True, decode=True))
        assert not [m for m in pulled if "error" in m], pulled
        dst_image = dst.inspect_image(f"{repo}:latest")
        assert dst_image["Id"] == image_id
        assert dst_image["RootFS"] == src_image["RootFS"]
        assert f"{repo}@{digest}" in dst_image["RepoDigests"]
        # and back: the receiving engine pushes what it pulled; the registry keeps one image
        again = list(dst.push(repo, tag="latest", stream=True, decode=True))
        assert not [m for m in again if "error" in m], again
        assert registry.manifest(repo.split("/", 1)[1], "latest")[1]["config"]["digest"] == image_id
    finally:
        remove_repository(api_client, repo)
        remove_repository(reference_api, repo)


def test_sdk_containers_run_pulls_a_missing_image(
    client: docker.DockerClient, api_client: docker.APIClient, busybox_image: str, repo: str
) -> None:
    ref = f"{repo}:latest"
    api_client.tag(busybox_image, repo, "latest")
    list(api_client.push(repo, tag="latest", stream=True))
    api_client.remove_image(ref)
    out = client.containers.run(ref, ["echo", "from the registry"], remove=True, network_mode="none")
    assert out == b"from the registry\n"
    assert ref in client.images.get(ref).tags
