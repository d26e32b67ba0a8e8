from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from runtime.errors import Conflict, ImageNotFound, InvalidParameter
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.images.model import DeleteItem
from runtime.images.service import ImageService
from tests.runtime.images.conftest import actions, rootfs_tar


async def imported(service: ImageService, repo: str = "busybox", tag: str = "latest", marker: bytes = b"v1", **kw):  # type: ignore[no-untyped-def]
    return await service.import_image(io.BytesIO(rootfs_tar(marker)), repo=repo, tag=tag, **kw)


async def test_import_creates_a_docker_compatible_image(service: ImageService, bus: EventBus) -> None:
    data = rootfs_tar()
    image = await service.import_image(io.BytesIO(gzip.compress(data)), repo="busybox", config={"Cmd": ["sh"], "Env": ["A=1"]})
    assert image.id == "sha256:" + hashlib.sha256(image.raw_config).hexdigest()
    cfg = json.loads(image.raw_config)
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}
    assert cfg["config"]["Cmd"] == ["sh"] and cfg["config"]["Env"] == ["A=1"]
    assert cfg["comment"] == "Imported from -" and cfg["history"][0]["comment"] == "Imported from -"
    assert list(cfg) == sorted(cfg)  # dockerd's key order
    assert image.repo_tags == ("busybox:latest",)
    assert image.size == len(b"\x7fELFv1") + len("busybox") + len(b"root:x:0:0:root:/root:/bin/sh\n")
    assert actions(bus) == [("tag", "busybox:latest"), ("import", image.id)]


async def test_lookups(service: ImageService) -> None:
    image = await imported(service)
    hex_id = image.id[7:]
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", image.id, hex_id, hex_id[:12], "sha256:" + hex_id[:5]):
        assert service.get(ref).id == image.id, ref
    with pytest.raises(ImageNotFound, match=r"^No such image: nosuch:latest$"):
        service.get("nosuch")
    with pytest.raises(ImageNotFound, match=r"^No such image: sha256:0{64}$"):
        service.get("0" * 64)
    with pytest.raises(InvalidParameter, match="must be lowercase"):
        service.get("NoSuch")


async def test_ambiguous_prefix_finds_nothing(service: ImageService) -> None:
    ids = [(await imported(service, repo=f"img{i}", marker=str(i).encode())).id for i in range(40)]
    first = {i[7] for i in ids}
    shared = next(c for c in "0123456789abcdef" if sum(i[7] == c for i in ids) > 1) if len(first) < 40 else None
    assert shared is not None
    with pytest.raises(ImageNotFound):
        service.get(shared)


async def test_tag_untag_and_delete(service: ImageService, bus: EventBus) -> None:
    image = await imported(service)
    await service.tag("busybox", "localhost:5000/a/b", "t")
    assert service.get("localhost:5000/a/b:t").id == image.id
    assert set(service.get(image.id).repo_tags) == {"busybox:latest", "localhost:5000/a/b:t"}
    with pytest.raises(InvalidParameter, match="invalid tag format"):
        await service.tag("busybox", "x", "bad tag")
    with pytest.raises(InvalidParameter, match="ambiguous tag"):
        await service.tag("busybox", "sha256", "x")
    # deleting by ID with two repositories needs force
    with pytest.raises(Conflict, match=r"must be forced\) - image is referenced in multiple repositories"):
        await service.delete(image.id[7:19])
    assert await service.delete("localhost:5000/a/b:t") == [DeleteItem(untagged="localhost:5000/a/b:t")]
    bus_before = len(bus.history())
    records = await service.delete("busybox")
    assert records[0] == DeleteItem(untagged="busybox:latest")
    assert records[1] == DeleteItem(deleted=image.id)
    assert records[2] == DeleteItem(deleted=image.chain_id)  # the layer went with it
    assert [e.action for e in bus.history()[bus_before:]] == ["untag", "delete"]
    with pytest.raises(ImageNotFound):
        service.get(image.id)
    assert service.layers.layers() == []


async def test_delete_conflicts_with_containers(service: ImageService) -> None:
    image = await imported(service)
    users = {image.id: ["c0ffee" * 10]}
    running: dict[str, list[str]] = {}
    service.set_usage_checker(lambda i: users.get(i, []), lambda i: running.get(i, []))
    with pytest.raises(Conflict, match=r'unable to remove repository reference "busybox" \(must force\) - container c0ffeec0ffee is using its referenced image ' + image.id[7:19]):
        await service.delete("busybox")
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped container c0ffeec0ffee"):
        await service.delete(image.id)
    running[image.id] = users[image.id]
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container c0ffeec0ffee"):
        await service.delete(image.id, force=True)
    running.clear()
    service.layers.prepare("c0ffee", image.chain_id)  # the container's writable layer
    records = await service.delete(image.id, force=True)
    assert DeleteItem(deleted=image.id) in records
    assert service.layers.exists(image.chain_id)  # still needed by the container


async def test_list_filters(service: ImageService) -> None:
    a = await imported(service, repo="alpha", marker=b"a", config={"Labels": {"tier": "web"}})
    await asyncio.sleep(0.01)
    b = await imported(service, repo="beta", marker=b"b")
    await asyncio.sleep(0.01)
    c = await imported(service, repo="gamma", marker=b"c")
    await service.delete("gamma")  # dangling now? no: deleted entirely (single tag)
    d = await service.import_image(io.BytesIO(rootfs_tar(b"d")))  # untagged: dangling
    ids = lambda **kw: [s.image.id for s in service.list_images(**kw)]  # noqa: E731
    assert ids() == [d.id, b.id, a.id]  # newest first
    assert ids(filters=Filters.of({"dangling": ["true"]})) == [d.id]
    assert ids(filters=Filters.of({"dangling": ["false"]})) == [b.id, a.id]
    assert ids(filters=Filters.of({"label": ["tier=web"]})) == [a.id]
    assert ids(filters=Filters.of({"reference": ["al*"]})) == [a.id]
    assert ids(filters=Filters.of({"before": ["beta"]})) == [a.id]
    assert ids(filters=Filters.of({"since": ["alpha"]})) == [d.id, b.id]
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        service.list_images(filters=Filters.of({"bogus": ["1"]}))
    summary = service.list_images(filters=Filters.of({"reference": ["alpha"]}), shared_size=True)[0]
    assert summary.image.repo_tags == ("alpha:latest",) and summary.shared_size == 0 and summary.containers == -1
    assert c.id not in ids()


async def test_prune(service: ImageService, bus: EventBus) -> None:
    kept = await imported(service, repo="kept", marker=b"k")
    dangling = await service.import_image(io.BytesIO(rootfs_tar(b"x")))
    report = await service.prune()
    assert [d.deleted for d in report.deleted] == [dangling.id, dangling.chain_id]
    assert report.space_reclaimed == service.layers.get(kept.chain_id).size  # same content size
    assert bus.history()[-1].action == "prune" and bus.history()[-1].attributes["reclaimed"] == str(report.space_reclaimed)
    report = await service.prune(Filters.of({"dangling": ["false"]}))
    assert DeleteItem(untagged="kept:latest") in report.deleted and DeleteItem(deleted=kept.id) in report.deleted
    assert service.list_images() == []


async def test_commit_and_history(service: ImageService, tmp_path: Path) -> None:
    base = await imported(service)
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "hello").write_text("world")
    os.mknod(upper / "tmp", 0o20000 | 0o600, 0)  # whiteout: tmp deleted
    cfg = dict(base.runtime_config, Cmd=["cat", "/hello"])
    child = await service.commit(base, upper, cfg, "child:v1", "a comment", "me", created_by="/bin/sh -c echo")
    assert child.parent == base.id and child.repo_tags == ("child:v1",)
    assert len(child.diff_ids) == 2 and child.diff_ids[0] == base.diff_ids[0]
    dirs = service.rootfs_lowerdirs(child)
    assert len(dirs) == 2 and (dirs[0] / "hello").read_text() == "world"
    hist = service.history("child:v1")
    assert [h.id for h in hist] == [child.id, base.id]
    assert hist[0].created_by == "/bin/sh -c echo" and hist[0].comment == "a comment" and hist[0].size == 5
    assert hist[1].tags == ("busybox:latest",)
    # metadata-only commit: no new layer, empty_layer in history
    meta = await service.commit(child, None, dict(cfg, Env=["X=1"]), None)
    assert meta.diff_ids == child.diff_ids and meta.history[-1].get("empty_layer") is True
    with pytest.raises(Conflict, match="image has dependent child images"):
        await service.delete(base.id, force=True)


async def test_save_load_round_trip(service: ImageService, tmp_path: Path, bus: EventBus) -> None:
    base = await imported(service, config={"Cmd": ["sh"]})
    await service.tag("busybox", "busybox", "other")
    chunks = b"".join([c async for c in await service.save(["busybox:latest", "busybox:other"])])
    tf = tarfile.open(fileobj=io.BytesIO(chunks))
    names = tf.getnames()
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert names[-4:] == ["index.json", "manifest.json", "oci-layout", "repositories"]
    manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest == [{"Config": "blobs/sha256/" + base.id[7:], "RepoTags": ["busybox:latest", "busybox:other"],
                         "Layers": ["blobs/sha256/" + base.diff_ids[0][7:]]}]
    layer = tf.extractfile("blobs/sha256/" + base.diff_ids[0][7:]).read()  # type: ignore[union-attr]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == base.diff_ids[0]
    index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/library/busybox:latest", "docker.io/library/busybox:other"]
    assert json.load(tf.extractfile("repositories")) == {"busybox": {"latest": base.diff_ids[0][7:], "other": base.diff_ids[0][7:]}}  # type: ignore[arg-type]
    assert tf.extractfile("oci-layout").read() == b'{"imageLayoutVersion": "1.0.0"}'  # type: ignore[union-attr]
    assert ("save", base.id) in actions(bus)

    other = ImageService(tmp_path / "other", EventBus())
    lines = []
    loaded = await other.load(io.BytesIO(chunks), progress=lambda p: lines.append(p))
    await asyncio.sleep(0)
    assert loaded == [base.id]
    assert other.get("busybox:other").id == base.id
    assert [p.stream for p in lines if p.stream] == ["Loaded image: busybox:latest\n", "Loaded image: busybox:other\n"]
    assert any(p.status == "Loading layer" and p.id == base.diff_ids[0][7:19] for p in lines)
    # and the reloaded image saves to the same bytes
    again = b"".join([c async for c in await other.save(["busybox:latest", "busybox:other"])])
    assert again == chunks


async def test_load_oci_layout_without_manifest_json(service: ImageService, tmp_path: Path) -> None:
    base = await imported(service)
    saved = b"".join([c async for c in await service.save(["busybox"])])
    src = tarfile.open(fileobj=io.BytesIO(saved))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for m in src.getmembers():
            if m.name in ("manifest.json", "repositories"):
                continue
            out.addfile(m, src.extractfile(m) if m.isfile() else None)
    other = ImageService(tmp_path / "oci", EventBus())
    assert await other.load(io.BytesIO(buf.getvalue()), quiet=True) == [base.id]
    assert other.get("busybox:latest").id == base.id


async def test_load_rejects_garbage_and_mismatched_layers(service: ImageService) -> None:
    with pytest.raises(InvalidParameter):
        await service.load(io.BytesIO(b"not a tar at all" * 100))
    base = await imported(service)
    saved = bytearray(b"".join([c async for c in await service.save(["busybox"])]))
    # corrupt the layer content: the diff ID check must refuse it
    layer_hex = base.diff_ids[0][7:]
    pos = saved.find(b"\x7fELFv1")
    saved[pos + 4] ^= 0x20
    other = ImageService(service.layers.root.parent / "x", EventBus())
    with pytest.raises(Exception, match="digest mismatch|failed to verify"):
        await other.load(io.BytesIO(bytes(saved)))
    assert other.list_images() == [] and other.layers.layers() == []
    assert layer_hex


async def test_search_fails_fast(service: ImageService) -> None:
    from runtime.errors import Unavailable

    with pytest.raises(Unavailable):
        await asyncio.wait_for(service.search("busybox"), 1)


async def test_state_survives_a_restart(service: ImageService, tmp_path: Path) -> None:
    image = await imported(service, config={"Labels": {"x": "y"}})
    await service.tag("busybox", "again", "2")
    (service.tmp_dir / "load-leftover").mkdir()
    reopened = ImageService(tmp_path / "data", EventBus())
    again = reopened.get("again:2")
    assert again.id == image.id and again.raw_config == image.raw_config
    assert set(again.repo_tags) == {"busybox:latest", "again:2"} and again.labels == {"x": "y"}
    assert reopened.rootfs_lowerdirs(again) == service.rootfs_lowerdirs(image)
    assert list(reopened.tmp_dir.iterdir()) == []
