"""Pushing from a real ImageService to an in-process registry."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest

from runtime.errors import NotFound
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.model import Progress
from runtime.images.pull import Puller
from runtime.images.push import Pusher, PushResult, manifest_bytes
from runtime.images.reference import parse_normalized_named
from runtime.images.service import ImageService
from tests.runtime.archive.tarbuild import build, dir_, reg
from tests.runtime.images.conftest import actions, rootfs_tar
from tests.runtime.images.fakeregistry import FakeRegistry, publish_image, sha256


async def _fake(aiohttp_server: Any) -> FakeRegistry:
    registry = FakeRegistry()
    server = await aiohttp_server(registry.app())
    registry.base = f"http://127.0.0.1:{server.port}"
    return registry


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeRegistry:
    return await _fake(aiohttp_server)


def host(fake: FakeRegistry) -> str:
    return fake.base.removeprefix("http://")


async def make_image(service: ImageService, ref: str, marker: bytes = b"v1") -> str:
    image = await service.import_image(io.BytesIO(rootfs_tar(marker)), repo=ref.rpartition(":")[0], tag=ref.rpartition(":")[2])
    return image.id


async def push(service: ImageService, ref: str, auth: AuthConfig = AuthConfig()) -> tuple[list[PushResult], list[Progress]]:
    out: list[Progress] = []
    results = await service.push(parse_normalized_named(ref), auth, out.append)
    return results, out


def short(diff_id: str) -> str:
    return diff_id[7:19]


async def test_push_uploads_layers_config_and_manifest(service: ImageService, fake: FakeRegistry) -> None:
    ref = f"{host(fake)}/team/app:v1"
    image_id = await make_image(service, ref)
    image = service.get(ref)
    (result,), records = await push(service, ref)
    layer_id = short(image.diff_ids[0])
    assert records[0] == Progress(status=f"The push refers to repository [{host(fake)}/team/app]")
    assert records[1] == Progress(status="Preparing", id=layer_id, current=0, total=0)
    pushing = [p for p in records if p.status == "Pushing"]
    assert pushing and pushing[-1].current == service.layers.get(image.chain_id or "").tar_size
    assert pushing[-1].total == service.layers.get(image.chain_id or "").size
    assert Progress(status="Pushed", id=layer_id, current=0, total=0) in records
    assert records[-2] == Progress(status=f"v1: digest: {result.digest} size: {result.size}")
    assert records[-1] == Progress(aux={"Tag": "v1", "Digest": result.digest, "Size": result.size})

    media, body = fake.manifests[result.digest]
    assert media == "application/vnd.docker.distribution.manifest.v2+json" and len(body) == result.size
    manifest = json.loads(body)
    assert manifest["config"] == {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "size": len(image.raw_config), "digest": image_id}  # fmt: skip
    assert fake.blobs[image_id] == image.raw_config
    (layer,) = manifest["layers"]
    assert sha256(gzip.decompress(fake.blobs[layer["digest"]])) == image.diff_ids[0]
    assert service.get(ref).repo_digests == (f"{host(fake)}/team/app@{result.digest}",)
    assert ("push", f"{host(fake)}/team/app") in actions(service.events)
    # the compressed blob is kept for the next push
    assert service.store.content.exists(layer["digest"])


def test_manifest_is_indented_like_go() -> None:
    body = manifest_bytes("sha256:" + "a" * 64, 10, [("sha256:" + "b" * 64, 20)])
    assert body.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n')
    assert b'\n   "layers": [\n      {\n         "mediaType"' in body


async def test_second_push_finds_the_layer(service: ImageService, fake: FakeRegistry) -> None:
    ref = f"{host(fake)}/app:latest"
    await make_image(service, ref)
    (first,), _ = await push(service, ref)
    fake.requests.clear()
    (second,), records = await push(service, ref)
    assert second.digest == first.digest
    assert "Layer already exists" in [p.status for p in records]
    assert not [r for r in fake.requests if r[0] in ("POST", "PATCH")]


async def test_push_to_another_repository_mounts(service: ImageService, fake: FakeRegistry) -> None:
    ref = f"{host(fake)}/one:latest"
    await make_image(service, ref)
    await push(service, ref)
    await service.tag(ref, f"{host(fake)}/two", "latest")
    _, records = await push(service, f"{host(fake)}/two:latest")
    assert "Mounted from one" in [p.status for p in records]
    assert any(method == "POST" and "mount=" in path for method, path in fake.requests)


async def test_the_layer_is_remembered_after_rmi(service: ImageService, fake: FakeRegistry) -> None:
    # dockerd keeps its V2 metadata when the layer goes: the same layer imported again and
    # pushed to another repository is mounted, not compressed and uploaded again
    ref = f"{host(fake)}/first:latest"
    await make_image(service, ref)
    await push(service, ref)
    await service.delete(ref)
    assert service.layers.layers() == []
    again = f"{host(fake)}/second:latest"
    await make_image(service, again)
    fake.requests.clear()
    _, records = await push(service, again)
    assert "Mounted from first" in [p.status for p in records]
    assert not [r for r in fake.requests if r[0] == "PATCH"]


async def test_pulled_blob_is_reused_without_recompressing(
    service: ImageService, fake: FakeRegistry, aiohttp_server: Any
) -> None:
    layer = rootfs_tar(b"pulled")
    pub = publish_image(fake, "src", "latest", [layer])
    await service.pull(parse_normalized_named(f"{host(fake)}/src:latest"), AuthConfig(), lambda p: None)
    other = await _fake(aiohttp_server)
    target = f"{host(other)}/dst:latest"
    await service.tag(f"{host(fake)}/src:latest", f"{host(other)}/dst", "latest")
    stores = service._stores()
    out: list[Progress] = []
    pusher = Pusher(stores, service.registries, AuthConfig(), out.append, "test", chunk_size=100)
    (result,) = await pusher.push(parse_normalized_named(target))
    # the same gzip bytes as pulled, sent in Content-Range chunks of 100 bytes
    assert json.loads(other.manifests[result.digest][1])["layers"][0]["digest"] == pub.layer_digests[0]
    assert other.blobs[pub.layer_digests[0]] == fake.blobs[pub.layer_digests[0]]
    patches = [p for m, p in other.requests if m == "PATCH"]
    assert len(patches) == -(-len(fake.blobs[pub.layer_digests[0]]) // 100)


async def test_push_all_tags(service: ImageService, fake: FakeRegistry) -> None:
    repo = f"{host(fake)}/many"
    await make_image(service, f"{repo}:a")
    await service.tag(f"{repo}:a", repo, "b")
    results, _ = await push(service, repo)
    assert sorted(r.tag for r in results) == ["a", "b"]
    assert sorted(fake.tags["many"]) == ["a", "b"]


async def test_push_errors(service: ImageService, fake: FakeRegistry) -> None:
    repo = f"{host(fake)}/err"
    with pytest.raises(NotFound, match=f"^An image does not exist locally with the tag: {repo}$"):
        await push(service, repo)
    await make_image(service, f"{repo}:there")
    with pytest.raises(NotFound, match=f"^tag does not exist: {repo}:missing$"):
        await push(service, f"{repo}:missing")


async def test_push_needs_credentials_for_basic_auth(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "basic"
    ref = f"{host(fake)}/private:latest"
    await make_image(service, ref)
    with pytest.raises(AuthError, match="^no basic auth credentials$"):
        await push(service, ref)
    (result,), _ = await push(service, ref, AuthConfig(username="alice", password="secret"))
    assert result.digest in fake.manifests


async def test_push_with_bearer_asks_for_push_scope(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    ref = f"{host(fake)}/scoped:latest"
    await make_image(service, ref)
    await push(service, ref, AuthConfig(username="alice", password="secret"))
    scopes = {v for r in fake.token_requests for k, v in r["query"] if k == "scope"}
    assert scopes == {"repository:scoped:pull,push"}


async def test_pushed_image_pulls_back_identically(service: ImageService, fake: FakeRegistry, tmp_path: Any) -> None:
    ref = f"{host(fake)}/round:latest"
    layer = build([dir_("etc"), reg("etc/hostname", b"round\n")])
    image = await service.import_image(io.BytesIO(layer), repo=f"{host(fake)}/round", tag="latest")
    await push(service, ref)
    other = ImageService(tmp_path / "other", service.events)
    puller = Puller(other._stores(), other.registries, AuthConfig(), lambda p: None, "test")
    result = await puller.pull(parse_normalized_named(ref))
    assert result.image_id == image.id
    assert b"".join(other.layers.tar_stream(other.get(ref).chain_id or "")) == layer


def test_layer_compression_is_standard_gzip_and_deterministic() -> None:
    from runtime.images.push import _gzip_tee

    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> None:
            self.data += data

    tar = [bytes(range(256)) * 4096, b"pydockerd " * 100_000, b"\0" * 1_000_000]
    blobs = []
    for _ in range(2):
        sink = Sink()
        streamed = b"".join(_gzip_tee(iter(tar), sink, lambda done, final: None))  # type: ignore[arg-type]
        assert bytes(sink.data) == streamed
        blobs.append(streamed)
    assert blobs[0] == blobs[1]                      # same layer, same digest
    assert gzip.decompress(blobs[0]) == b"".join(tar)  # any gzip reader takes it
    assert blobs[0][:4] == b"\x1f\x8b\x08\x00" and blobs[0][4:8] == b"\0\0\0\0"  # no name, mtime 0
