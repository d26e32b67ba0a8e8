"""Local images through docker-py 7.1 (``client.images`` and ``APIClient``), plus the raw
``/images/json`` shapes that depend on the negotiated API version.

Every image gets a unique repository name; prune is scoped by a per-test label.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import docker
import docker.errors
import pytest

from conformance.apiversion import APIVersion
from conformance.conftest import Advertised
from conformance.imagetools import IMAGE_ID, remove_repo, TINY_SIZE, diff_id, read_saved, tiny_layer, unique_repo
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker


@pytest.fixture
def repo(api_client: docker.APIClient) -> Iterator[str]:
    name = unique_repo("conf-sdk")
    yield name
    remove_repo(api_client, name)


def _import(api: docker.APIClient, layer: bytes, repository: str | None = None, tag: str | None = None,
            changes: list[str] | None = None) -> str:  # fmt: skip
    """``import_image_from_data`` (POST /images/create?fromSrc=-); returns the image ID."""
    out = api.import_image_from_data(layer, repository=repository, tag=tag, changes=changes)
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert messages, out
    assert "error" not in messages[-1], messages
    image_id = messages[-1]["status"]
    assert IMAGE_ID.match(image_id), messages
    return str(image_id)


def test_import_from_data(client: docker.DockerClient, repo: str) -> None:
    layer = tiny_layer()
    image_id = _import(client.api, layer, repo, "v1", ['CMD ["sh"]', "ENV A=b"])
    image = client.images.get(f"{repo}:v1")
    assert image.id == image_id
    assert image.short_id == image_id[:19]
    assert image.tags == [f"{repo}:v1"]
    assert image.attrs["Config"]["Cmd"] == ["sh"]
    assert image.attrs["Config"]["Env"] == ["A=b"]
    assert image.attrs["RootFS"]["Layers"] == [diff_id(layer)]
    assert image.attrs["Size"] == TINY_SIZE


def test_images_get_by_id_forms(client: docker.DockerClient, repo: str) -> None:
    image_id = _import(client.api, tiny_layer(), repo, "latest")
    hex_id = image_id.removeprefix("sha256:")
    for ident in (image_id, hex_id, hex_id[:12], f"sha256:{hex_id[:12]}", repo, f"{repo}:latest",
                  f"docker.io/library/{repo}:latest"):  # fmt: skip
        assert client.images.get(ident).id == image_id, ident


def test_images_get_missing_raises_image_not_found(client: docker.DockerClient, repo: str) -> None:
    with pytest.raises(docker.errors.ImageNotFound) as info:
        client.images.get(f"{repo}:nope")
    assert info.value.status_code == 404
    assert f"No such image: {repo}:nope" in str(info.value.explanation)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("0123456789ab")  # 12-hex short ID that names nothing


def test_images_list(client: docker.DockerClient, repo: str, tracker: ResourceTracker) -> None:
    label = f"conformance.sdk={uuid.uuid4().hex}"
    tagged = _import(client.api, tiny_layer(), repo, "a", [f"LABEL {label}"])
    dangling = tracker.image(_import(client.api, tiny_layer(), changes=[f"LABEL {label}"]))

    by_name = client.images.list(name=repo)
    assert [i.id for i in by_name] == [tagged]
    assert by_name[0].tags == [f"{repo}:a"]
    assert by_name[0].labels == {label.split("=")[0]: label.split("=")[1]}

    labelled = client.images.list(filters={"label": label})
    assert {i.id for i in labelled} == {tagged, dangling}
    only_dangling = client.images.list(filters={"label": label, "dangling": True})
    assert [i.id for i in only_dangling] == [dangling]
    assert only_dangling[0].tags == []  # docker-py drops "<none>:<none>"
    assert {i.id for i in client.images.list(all=True, filters={"label": label})} == {tagged, dangling}
    assert {i.id for i in client.images.list(filters={"reference": f"{repo}:*"})} == {tagged}
    ids = client.api.images(name=repo, quiet=True)
    assert ids == [tagged]


def test_image_tag_and_remove(client: docker.DockerClient, repo: str) -> None:
    layer = tiny_layer()
    image_id = _import(client.api, layer, repo, "a")
    image = client.images.get(image_id)
    assert image.tag(repo, "b") is True
    assert image.tag(f"{repo}-x") is True  # no tag: latest
    image.reload()
    assert sorted(image.tags) == sorted([f"{repo}:a", f"{repo}:b", f"{repo}-x:latest"])

    assert client.api.remove_image(f"{repo}:b") == [{"Untagged": f"{repo}:b"}]
    with pytest.raises(docker.errors.APIError) as info:
        client.images.remove(image_id[7:19])
    assert info.value.status_code == 409
    assert "image is referenced in multiple repositories" in str(info.value.explanation)

    result = client.api.remove_image(image_id, force=True)
    assert sorted(r["Untagged"] for r in result if "Untagged" in r) == sorted([f"{repo}:a", f"{repo}-x:latest"])
    assert [r["Deleted"] for r in result if "Deleted" in r] == [image_id, diff_id(layer)]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image_id)


def test_images_remove_noprune_and_missing(client: docker.DockerClient, repo: str) -> None:
    _import(client.api, tiny_layer(), repo, "a")
    assert client.images.remove(f"{repo}:a", noprune=True) is None
    with pytest.raises(docker.errors.ImageNotFound) as info:
        client.images.remove(f"{repo}:a")
    assert info.value.explanation == f"No such image: {repo}:a"


def test_image_history(client: docker.DockerClient, repo: str) -> None:
    image_id = _import(client.api, tiny_layer(), repo, "h", ['CMD ["sh"]'])
    history = client.images.get(f"{repo}:h").history()
    assert len(history) == 1
    entry = history[0]
    assert entry["Id"] == image_id
    assert entry["Tags"] == [f"{repo}:h"]
    assert entry["Size"] == TINY_SIZE
    assert entry["Comment"] == "Imported from -"
    assert entry["CreatedBy"] == ""
    assert isinstance(entry["Created"], int) and entry["Created"] > 1_600_000_000


def test_image_save_and_load(client: docker.DockerClient, repo: str) -> None:
    layer = tiny_layer()
    image_id = _import(client.api, layer, repo, "s", ['CMD ["sh"]'])
    image = client.images.get(f"{repo}:s")
    data = b"".join(image.save(named=True))
    saved = read_saved(data)
    assert saved.config_ids == [image_id]
    assert saved.manifest[0]["RepoTags"] == [f"{repo}:s"]

    client.images.remove(f"{repo}:s")
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [image_id]
    assert loaded[0].tags == [f"{repo}:s"]
    assert client.images.get(f"{repo}:s").attrs["RootFS"]["Layers"] == [diff_id(layer)]


def test_image_save_unnamed_by_id(client: docker.DockerClient, repo: str) -> None:
    image_id = _import(client.api, tiny_layer(), repo, "u")
    data = b"".join(client.images.get(image_id).save(named=False))
    saved = read_saved(data)
    assert saved.config_ids == [image_id]
    assert saved.manifest[0].get("RepoTags") in (None, [])


def test_get_images_several_names_raw(client: docker.DockerClient, raw: RawHTTP, repo: str) -> None:
    a = _import(client.api, tiny_layer(), repo, "a")
    b = _import(client.api, tiny_layer(), repo, "b")
    resp = raw.get(f"/images/get?names={repo}%3Aa&names={repo}%3Ab")
    assert resp.status == 200, resp.describe()
    assert resp.header("Content-Type") == "application/x-tar"
    saved = read_saved(resp.body)
    assert sorted(saved.config_ids) == sorted([a, b])
    assert sorted(t for m in saved.manifest for t in m["RepoTags"]) == [f"{repo}:a", f"{repo}:b"]  # type: ignore[attr-defined]
    resp = raw.get(f"/images/get?names={repo}%3Aa&names={repo}%3Amissing")
    assert resp.status == 404
    # dockerd 20.10: "reference does not exist" when the repository exists but not the tag
    assert resp.error_message() in (f"No such image: {repo}:missing", "reference does not exist")


def test_images_prune(client: docker.DockerClient, repo: str, tracker: ResourceTracker) -> None:
    label = f"conformance.sdkprune={uuid.uuid4().hex}"
    tagged = _import(client.api, tiny_layer(), repo, "kept", [f"LABEL {label}"])
    dangling_layer = tiny_layer()
    dangling = tracker.image(_import(client.api, dangling_layer, changes=[f"LABEL {label}"]))

    result = client.images.prune(filters={"label": label})
    assert result["ImagesDeleted"] == [{"Deleted": dangling}, {"Deleted": diff_id(dangling_layer)}]
    assert result["SpaceReclaimed"] == TINY_SIZE
    assert client.images.get(tagged).id == tagged

    result = client.images.prune(filters={"label": label, "dangling": False})
    assert {"Untagged": f"{repo}:kept"} in result["ImagesDeleted"]
    assert {"Deleted": tagged} in result["ImagesDeleted"]
    assert result["SpaceReclaimed"] == TINY_SIZE

    result = client.images.prune(filters={"label": label})
    assert result["ImagesDeleted"] in (None, [])
    assert result["SpaceReclaimed"] == 0


# --- raw shapes -------------------------------------------------------------------------------


def _list(raw: RawHTTP, version: str, query: str) -> list[dict[str, Any]]:
    resp = raw.get(f"/v{version}/images/json?{query}")
    assert resp.status == 200, resp.describe()
    assert (resp.header("Content-Type") or "").startswith("application/json")
    data = resp.json()
    assert isinstance(data, list)
    return data


def test_list_shape_follows_requested_version(
    raw: RawHTTP, client: docker.DockerClient, advertised: Advertised, tracker: ResourceTracker, repo: str
) -> None:
    """Untagged images: ``<none>`` placeholders below 1.43, empty arrays from 1.43 on."""
    label = f"conformance.shape={uuid.uuid4().hex}"
    dangling = tracker.image(_import(client.api, tiny_layer(), changes=[f"LABEL {label}"]))
    tagged = _import(client.api, tiny_layer(), repo, "t", [f"LABEL {label}"])
    query = "filters=" + quote(json.dumps({"label": [label]}))
    version = str(advertised.max)
    rows = {r["Id"]: r for r in _list(raw, version, query)}
    assert set(rows) == {dangling, tagged}
    for row in rows.values():
        for key in ("Id", "ParentId", "RepoTags", "RepoDigests", "Created", "Size", "SharedSize", "Labels",
                    "Containers"):  # fmt: skip
            assert key in row, (key, row)
        assert row["Size"] == TINY_SIZE
        assert row["Labels"] == {label.split("=")[0]: label.split("=")[1]}
    assert rows[tagged]["RepoTags"] == [f"{repo}:t"]
    if advertised.max >= APIVersion.parse("1.43"):
        assert rows[dangling]["RepoTags"] == []
        assert rows[dangling]["RepoDigests"] == []
        assert rows[tagged]["RepoDigests"] == []
    old = _list(raw, "1.41", query)
    by_id = {r["Id"]: r for r in old}
    assert by_id[dangling]["RepoTags"] == ["<none>:<none>"]
    assert by_id[dangling]["RepoDigests"] == ["<none>@<none>"]
    assert by_id[dangling]["VirtualSize"] == TINY_SIZE


def test_inspect_missing_raw(raw: RawHTTP, repo: str) -> None:
    resp = raw.get(f"/images/{repo}:x/json")
    assert resp.status == 404
    assert resp.error_message().endswith(f"No such image: {repo}:x")
    resp = raw.request("DELETE", f"/images/{repo}:x")
    assert resp.status == 404
    assert resp.error_message() == f"No such image: {repo}:x"


def test_search_without_registry_fails_fast(raw: RawHTTP, engine_kind: str) -> None:
    """pydockerd has no index registry: a clear error, no hang (dockerd would ask Docker Hub,
    which this sandbox cannot reach, so only pydockerd is checked)."""
    if engine_kind != "pydockerd":
        pytest.skip("a real dockerd would contact Docker Hub")
    resp = RawHTTP(raw.host, timeout=20).get("/images/search?term=busybox")
    assert resp.status >= 400 and resp.status not in (404, 405), resp.describe()  # the route exists
    assert resp.error_message() and "page not found" not in resp.error_message()


# --- events -------------------------------------------------------------------------------


def test_image_events(client: docker.DockerClient, repo: str) -> None:
    """import, tag, save, untag, delete, load and prune each publish Docker's image event."""
    api = client.api
    label = f"conformance.events={uuid.uuid4().hex}"
    since = time.time() - 1
    image_id = _import(api, tiny_layer(), repo, "a", [f"LABEL {label}"])
    api.tag(f"{repo}:a", repo, "b")
    data = b"".join(api.get_image(f"{repo}:a"))
    api.remove_image(f"{repo}:b")
    api.remove_image(f"{repo}:a")
    list(api.load_image(data))  # a generator: the load finishes when its stream is read
    api.tag(image_id, repo, "c")
    api.remove_image(f"{repo}:a")
    pruned = api.prune_images(filters={"label": label, "dangling": False})
    until = time.time() + 1

    def events(**filters: str) -> list[dict[str, Any]]:
        stream = api.events(since=since, until=until, filters={"type": "image", **filters}, decode=True)
        return list(stream)

    mine = events(image=image_id)
    actions = [e["Action"] for e in mine]
    assert sorted(actions[:2]) == ["import", "tag"], actions  # dockerd 20.10 sends the tag first
    assert actions[2:] == ["tag", "save", "untag", "untag", "delete", "load", "tag", "untag", "untag", "delete"], actions
    assert all(e["Actor"]["ID"] == image_id and e["Type"] == "image" for e in mine)
    tags = [e["Actor"]["Attributes"]["name"] for e in mine if e["Action"] == "tag"]
    assert tags == [f"{repo}:a", f"{repo}:b", f"{repo}:c"]
    # other tests may prune in the same window, so look for ours, not for the only one
    prunes = [e for e in events(event="prune") if e["Actor"]["Attributes"].get("reclaimed") == str(TINY_SIZE)]
    assert prunes, events(event="prune")
    assert pruned["SpaceReclaimed"] == TINY_SIZE
