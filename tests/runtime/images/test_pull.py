"""Pulling from an in-process registry into a real ImageService (layers on disk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.errors import EngineError, InvalidParameter, NotFound
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.model import Progress
from runtime.images.platform import Platform, select_manifest
from runtime.images.pull import PullResult, translate_pull_error
from runtime.images.reference import parse_normalized_named
from runtime.images.registry import RegistryError
from runtime.images.service import ImageService
from runtime.storage.digest import chain_ids
from tests.runtime.archive.tarbuild import build, dir_, reg
from tests.runtime.images.conftest import actions, rootfs_tar
from tests.runtime.images.fakeregistry import (
    FakeRegistry,
    image_config,
    publish_image,
    publish_index,
    sha256,
)


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeRegistry:
    registry = FakeRegistry()
    server = await aiohttp_server(registry.app())
    registry.base = f"http://127.0.0.1:{server.port}"
    return registry


def host(fake: FakeRegistry) -> str:
    return fake.base.removeprefix("http://")


def layer(name: str, data: bytes = b"x") -> bytes:
    return build([dir_("data"), reg(f"data/{name}", data)])


async def pull(service: ImageService, ref: str, auth: AuthConfig = AuthConfig(), **kw: Any) -> tuple[PullResult, list[Progress]]:
    out: list[Progress] = []
    result = await service.pull(parse_normalized_named(ref), auth, out.append, **kw)
    return result, out


def statuses(records: list[Progress], id_: str) -> list[str]:
    return [p.status for p in records if p.id == id_]


# --- manifest selection --------------------------------------------------------------------


def _index(*platforms: dict[str, str]) -> dict[str, Any]:
    return {"manifests": [{"digest": f"sha256:{i:064x}", "platform": p} for i, p in enumerate(platforms)]}


def test_select_manifest_prefers_exact_variant_then_none() -> None:
    index = _index({"os": "linux", "architecture": "arm", "variant": "v6"}, {"os": "linux", "architecture": "arm", "variant": "v7"},
                   {"os": "linux", "architecture": "arm"})  # fmt: skip
    assert select_manifest(index, Platform("linux", "arm", "v7"))["digest"].endswith("1")
    assert select_manifest(index, Platform("linux", "arm"))["digest"].endswith("2")


def test_select_manifest_skips_attestations_and_other_platforms() -> None:
    index = _index({"os": "unknown", "architecture": "unknown"}, {"os": "linux", "architecture": "arm64"},
                   {"os": "linux", "architecture": "amd64"})  # fmt: skip
    assert select_manifest(index, Platform("linux", "amd64"))["digest"].endswith("2")
    with pytest.raises(NotFound, match="^no matching manifest for linux/s390x in the manifest list entries$"):
        select_manifest(index, Platform("linux", "s390x"))


def test_platform_parse() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert str(Platform.parse("linux/x86_64")) == "linux/amd64"
    with pytest.raises(InvalidParameter):
        Platform.parse("linux//amd64")


def test_translate_pull_error_texts() -> None:
    ref = parse_normalized_named("example.com/team/app:v1")
    denied = translate_pull_error(RegistryError(403, "denied: requested access to the resource is denied", "DENIED"), ref)
    assert isinstance(denied, NotFound)
    assert str(denied) == ("pull access denied for example.com/team/app, repository does not exist or may require "
                           "'docker login': requested access to the resource is denied")  # fmt: skip
    unknown = translate_pull_error(RegistryError(404, "name unknown: repository name not known", "NAME_UNKNOWN"), ref)
    assert str(unknown) == "repository example.com/team/app not found: name unknown: repository name not known"
    other = RegistryError(500, "unknown: boom", "UNKNOWN")
    assert translate_pull_error(other, ref) is other


# --- pulling -------------------------------------------------------------------------------


async def test_pull_schema2_records_image_and_references(service: ImageService, fake: FakeRegistry) -> None:
    layers = [rootfs_tar(), layer("two")]
    pub = publish_image(fake, "team/app", "v1", layers)
    ref = f"{host(fake)}/team/app:v1"
    result, records = await pull(service, ref)
    assert result == PullResult(pub.config_digest, True, pub.manifest_digest)
    image = service.get(ref)
    assert image.id == pub.config_digest
    assert image.repo_tags == (ref,)
    assert image.repo_digests == (f"{host(fake)}/team/app@{pub.manifest_digest}",)
    assert image.diff_ids == [sha256(x) for x in layers]
    assert all(service.layers.exists(c) for c in chain_ids(image.diff_ids))
    assert records[0] == Progress(status="Pulling from team/app", id="v1")
    for digest in pub.layer_digests:
        seen = statuses(records, digest[7:19])
        assert seen[0] == "Pulling fs layer" and seen[-1] == "Pull complete"
        for step in ("Downloading", "Verifying Checksum", "Download complete", "Extracting"):
            assert step in seen
    assert records[-2:] == [Progress(status=f"Digest: {pub.manifest_digest}"),
                            Progress(status=f"Status: Downloaded newer image for {ref}")]  # fmt: skip
    assert ("pull", f"{host(fake)}/team/app") in actions(service.events)

    again, records = await pull(service, ref)
    assert not again.updated
    assert [p.status for p in records] == ["Pulling from team/app", f"Digest: {pub.manifest_digest}",
                                           f"Status: Image is up to date for {ref}"]  # fmt: skip


async def test_pull_manifest_list_takes_the_host_platform(service: ImageService, fake: FakeRegistry) -> None:
    amd = publish_image(fake, "multi", None, [layer("amd")], arch="amd64")
    arm = publish_image(fake, "multi", None, [layer("arm")], arch="arm64")
    list_digest = publish_index(fake, "multi", "latest", [({"os": "linux", "architecture": "arm64"}, arm),
                                                          ({"os": "linux", "architecture": "amd64"}, amd)], oci=False)  # fmt: skip
    result, records = await pull(service, f"{host(fake)}/multi")
    assert result.image_id == amd.config_digest and result.digest == list_digest
    assert service.get(f"{host(fake)}/multi").repo_digests == (f"{host(fake)}/multi@{list_digest}",)
    fetched = {path for _method, path in fake.requests}
    assert f"/v2/multi/blobs/{arm.layer_digests[0]}" not in fetched
    assert Progress(status=f"Digest: {list_digest}") in records


async def test_pull_oci_index_with_zstd_and_platform_choice(service: ImageService, fake: FakeRegistry) -> None:
    amd = publish_image(fake, "oci", None, [layer("a", b"amd")], compression="zstd", oci=True)
    arm = publish_image(fake, "oci", None, [layer("a", b"arm")], compression="zstd", oci=True, arch="arm64")
    publish_index(fake, "oci", "1", [({"os": "linux", "architecture": "amd64"}, amd), ({"os": "linux", "architecture": "arm64"}, arm)])
    result, _ = await pull(service, f"{host(fake)}/oci:1", platform="linux/arm64")
    assert result.image_id == arm.config_digest
    diff_dir = service.layers.get(chain_ids(service.get(result.image_id).diff_ids)[-1]).diff_dir
    assert (diff_dir / "data" / "a").read_bytes() == b"arm"


async def test_pull_without_a_matching_platform(service: ImageService, fake: FakeRegistry) -> None:
    arm = publish_image(fake, "armonly", None, [layer("a")], arch="arm64")
    publish_index(fake, "armonly", "latest", [({"os": "linux", "architecture": "arm64"}, arm)])
    with pytest.raises(NotFound, match="no matching manifest for linux/amd64 in the manifest list entries"):
        await pull(service, f"{host(fake)}/armonly")


async def test_pull_of_missing_manifest(service: ImageService, fake: FakeRegistry) -> None:
    ref = f"{host(fake)}/nothing:here"
    with pytest.raises(NotFound) as info:
        await pull(service, ref)
    assert str(info.value) == f"manifest for {ref} not found: manifest unknown: manifest unknown"


async def test_blob_digest_mismatch_is_refused(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "bad", "latest", [layer("x", b"payload" * 100)])
    fake.corrupt.add(pub.layer_digests[0])
    with pytest.raises(EngineError, match=f"filesystem layer verification failed for digest {pub.layer_digests[0]}"):
        await pull(service, f"{host(fake)}/bad")
    assert service.store.ids() == []
    assert not service.store.content.exists(pub.layer_digests[0])
    assert service.layers.layers() == []


async def test_wrong_diff_id_of_a_later_layer_is_refused_and_nothing_is_left(
    service: ImageService, fake: FakeRegistry
) -> None:
    # layers are unpacked in parallel into staging, committed in order after their check
    one, two = layer("one"), layer("two")
    publish_image(fake, "diff", "latest", [one, two], config=image_config([sha256(one), sha256(b"other")]))
    with pytest.raises(EngineError, match=f"layer digest mismatch: expected {sha256(b'other')}, got {sha256(two)}"):
        await pull(service, f"{host(fake)}/diff")
    assert service.store.ids() == []
    assert [x.diff_id for x in service.layers.layers()] in ([], [sha256(one)])
    assert list(service.layers.tmp_dir.iterdir()) == []


async def test_config_digest_mismatch_is_refused(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "badcfg", "latest", [layer("x")])
    fake.corrupt.add(pub.config_digest)
    with pytest.raises(EngineError, match="failed verification"):
        await pull(service, f"{host(fake)}/badcfg")
    assert service.store.ids() == []


async def test_layer_not_matching_the_config_is_refused(service: ImageService, fake: FakeRegistry) -> None:
    wrong = sha256(b"something else")
    publish_image(fake, "liar", "latest", [layer("x")], diff_ids=[wrong])
    with pytest.raises(EngineError, match="digest"):
        await pull(service, f"{host(fake)}/liar")
    assert service.store.ids() == [] and service.layers.layers() == []


async def test_manifest_not_matching_the_requested_digest(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "swap", "latest", [layer("x")])
    forged = "sha256:" + "ab" * 32
    fake.manifests[forged] = fake.manifests[pub.manifest_digest]
    with pytest.raises(EngineError, match=f"manifest verification failed for digest {forged}"):
        await pull(service, f"{host(fake)}/swap@{forged}")


async def test_config_layer_count_mismatch(service: ImageService, fake: FakeRegistry) -> None:
    publish_image(fake, "count", "latest", [layer("x")], config=image_config([sha256(b"a"), sha256(b"b")]))
    with pytest.raises(EngineError, match="layers from manifest don't match image configuration"):
        await pull(service, f"{host(fake)}/count")


async def test_windows_image_is_refused(service: ImageService, fake: FakeRegistry) -> None:
    base = layer("x")
    publish_image(fake, "win", "latest", [base], config=image_config([sha256(base)], os_name="windows"))
    with pytest.raises(EngineError, match='image operating system "windows" cannot be used on this platform'):
        await pull(service, f"{host(fake)}/win")


async def test_existing_layers_are_not_downloaded_again(service: ImageService, fake: FakeRegistry) -> None:
    base = rootfs_tar()
    first = publish_image(fake, "app", "base", [base])
    second = publish_image(fake, "app", "top", [base, layer("top")])
    await pull(service, f"{host(fake)}/app:base")
    fake.requests.clear()
    _, records = await pull(service, f"{host(fake)}/app:top")
    assert statuses(records, first.layer_digests[0][7:19]) == ["Already exists"]
    assert statuses(records, second.layer_digests[1][7:19])[-1] == "Pull complete"
    assert ("GET", f"/v2/app/blobs/{first.layer_digests[0]}") not in fake.requests


async def test_pull_after_rmi_gives_the_same_image(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "again", "latest", [layer("x")])
    ref = f"{host(fake)}/again:latest"
    await pull(service, ref)
    await service.delete(ref)
    assert service.store.ids() == [] and service.layers.layers() == []
    assert not service.store.content.exists(pub.layer_digests[0])  # compressed blob pruned with its layer
    result, records = await pull(service, ref)
    assert result.image_id == pub.config_digest and result.updated
    assert "Pull complete" in statuses(records, pub.layer_digests[0][7:19])


async def test_many_layers_wait_for_a_download_slot(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "deep", "latest", [layer(f"l{i}", bytes([i]) * 10) for i in range(5)])
    _, records = await pull(service, f"{host(fake)}/deep")
    waiting = [p.id for p in records if p.status == "Waiting"]
    assert waiting == [d[7:19] for d in pub.layer_digests[3:]]
    assert len(service.get(f"{host(fake)}/deep").diff_ids) == 5


async def test_pull_all_tags(service: ImageService, fake: FakeRegistry) -> None:
    one = publish_image(fake, "tags", "one", [layer("1")])
    two = publish_image(fake, "tags", "two", [layer("2")])
    ref = f"{host(fake)}/tags"
    result, records = await pull(service, ref, all_tags=True)
    assert result.updated
    assert service.get(f"{ref}:one").id == one.config_digest
    assert service.get(f"{ref}:two").id == two.config_digest
    assert [p.id for p in records if p.status == "Pulling from tags"] == ["one", "two"]
    assert records[-1] == Progress(status=f"Status: Downloaded newer image for {ref}")


async def test_pull_by_digest(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "bydigest", "latest", [layer("x")])
    ref = f"{host(fake)}/bydigest@{pub.manifest_digest}"
    _, records = await pull(service, ref)
    image = service.get(ref)
    assert image.repo_digests == (ref,) and image.repo_tags == ()
    assert records[0] == Progress(status="Pulling from bydigest", id=ref)
    _, records = await pull(service, ref)
    assert records[-1] == Progress(status=f"Status: Image is up to date for {ref}")


async def test_docker_hub_names_go_to_the_mirror(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "library/busybox", "latest", [layer("bb")])
    service.configure_registries(mirrors=[fake.base])
    result, records = await pull(service, "busybox")
    assert result.image_id == pub.config_digest
    assert service.get("busybox:latest").repo_tags == ("busybox:latest",)
    assert records[0] == Progress(status="Pulling from library/busybox", id="latest")
    assert records[-1] == Progress(status="Status: Downloaded newer image for busybox:latest")
    assert ("GET", f"/v2/library/busybox/manifests/{pub.manifest_digest}") in fake.requests


def test_invalid_mirror_or_insecure_entry_is_refused(service: ImageService) -> None:
    with pytest.raises(InvalidParameter, match="invalid mirror"):
        service.configure_registries(mirrors=["ftp://mirror.example"])
    with pytest.raises(InvalidParameter, match="should not contain '://'"):
        service.configure_registries(insecure=["http://reg.example"])


# --- authentication ------------------------------------------------------------------------


async def test_bearer_token_flow(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    publish_image(fake, "private/app", "latest", [layer("x"), layer("y")])
    await pull(service, f"{host(fake)}/private/app", AuthConfig(username="alice", password="secret"))
    assert len(fake.token_requests) == 1  # one token for the whole pull
    request = fake.token_requests[0]
    assert ("scope", "repository:private/app:pull") in request["query"]
    assert ("service", "fake-registry") in request["query"]
    assert ("account", "alice") in request["query"]
    assert request["authorization"].startswith("Basic ")


async def test_bearer_anonymous_and_wrong_password(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    publish_image(fake, "public", "latest", [layer("x")])
    await pull(service, f"{host(fake)}/public")
    assert fake.token_requests[0]["authorization"] == ""
    await service.delete(f"{host(fake)}/public")
    with pytest.raises(AuthError, match="unauthorized: incorrect username or password"):
        await pull(service, f"{host(fake)}/public", AuthConfig(username="alice", password="wrong"))


async def test_registry_token_and_identity_token(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    publish_image(fake, "tok", "latest", [layer("x")])
    fake.issued_tokens["given-token"] = {"repository:tok:pull"}
    await pull(service, f"{host(fake)}/tok", AuthConfig(registry_token="given-token"))
    assert fake.token_requests == []
    await service.delete(f"{host(fake)}/tok")
    fake.refresh_token = "refresh-1"
    await pull(service, f"{host(fake)}/tok", AuthConfig(identity_token="refresh-1"))
    (request,) = fake.token_requests
    assert request["method"] == "POST" and request["grant_type"] == "refresh_token"
    assert request["scope"] == "repository:tok:pull" and request["client_id"] == "docker"


async def test_basic_auth(service: ImageService, fake: FakeRegistry) -> None:
    fake.auth = "basic"
    publish_image(fake, "basic", "latest", [layer("x")])
    ref = f"{host(fake)}/basic:latest"
    with pytest.raises(AuthError) as info:
        await pull(service, ref)
    assert str(info.value) == f'Head "{fake.base}/v2/basic/manifests/latest": no basic auth credentials'
    encoded = AuthConfig(auth="YWxpY2U6c2VjcmV0")  # base64("alice:secret")
    result, _ = await pull(service, ref, encoded)
    assert service.get(ref).id == result.image_id


async def test_single_arch_image_of_another_platform(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "armsingle", "latest", [layer("a")], arch="arm64")
    ref = f"{host(fake)}/armsingle"
    with pytest.raises(NotFound, match="does not match the specified platform: wanted linux/amd64, actual: linux/arm64"):
        await pull(service, ref, platform="linux/amd64")
    result, _ = await pull(service, ref)  # without --platform it is pulled, as dockerd does
    assert result.image_id == pub.config_digest


async def test_layer_descriptor_without_size_is_refused(service: ImageService, fake: FakeRegistry) -> None:
    pub = publish_image(fake, "nosize", None, [layer("x")])
    doc = json.loads(pub.manifest)
    del doc["layers"][0]["size"]
    fake.put_manifest("nosize", json.dumps(doc).encode(), doc["mediaType"], "latest")
    with pytest.raises(EngineError, match="invalid layer descriptor"):
        await pull(service, f"{host(fake)}/nosize")
    assert service.store.ids() == []
