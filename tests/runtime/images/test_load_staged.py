"""docker load of layers big enough to be unpacked as the archive streams (load._Stager)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from runtime.errors import EngineError
from runtime.events import EventBus
from runtime.images.load import STAGE_MIN
from runtime.images.service import ImageService
from tests.runtime.archive.tarbuild import build, dir_, reg


def big_layer(marker: bytes) -> bytes:
    blob = build([dir_("data"), reg("data/big", marker * (STAGE_MIN // len(marker) + 1000)),
                  reg("data/small", marker)])
    assert len(blob) > STAGE_MIN
    return blob


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def archive(members: list[tuple[str, bytes | str]]) -> bytes:
    """A tar of regular files (bytes) and symlinks (str target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def no_staging_left(service: ImageService) -> bool:
    return not os.listdir(service.layers.tmp_dir) and not os.listdir(service.tmp_dir)


async def test_big_layer_round_trip(tmp_path: Path) -> None:
    src = ImageService(tmp_path / "a", EventBus())
    image = await src.import_image(io.BytesIO(big_layer(b"round")), repo="big", tag="v1")
    saved = b"".join([c async for c in await src.save(["big:v1"])])
    dst = ImageService(tmp_path / "b", EventBus())
    lines: list[object] = []
    assert await dst.load(io.BytesIO(saved), progress=lines.append) == [image.id]
    assert dst.get("big:v1").diff_ids == image.diff_ids
    layer = dst.layers.get(dst.get("big:v1").chain_id or "")
    assert (layer.diff_dir / "data" / "small").read_bytes() == b"round"
    again = b"".join([c async for c in await dst.save(["big:v1"])])
    assert again == saved
    assert no_staging_left(dst)


async def test_docker_20_10_archive_with_a_symlinked_repeated_layer(tmp_path: Path) -> None:
    # dockerd 20.10 writes "<id>/layer.tar" and links a repeated layer to the first copy
    one, two = big_layer(b"one"), big_layer(b"two")
    diff_ids = [sha(one), sha(two), sha(one)]
    cfg = config(diff_ids)
    manifest = [{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": ["old:format"],
                 "Layers": ["a/layer.tar", "b/layer.tar", "c/layer.tar"]}]
    data = archive([("a/layer.tar", one), ("b/layer.tar", two), ("c/layer.tar", "../a/layer.tar"),
                    (f"{sha(cfg)[7:]}.json", cfg), ("manifest.json", json.dumps(manifest).encode())])
    service = ImageService(tmp_path / "s", EventBus())
    assert await service.load(io.BytesIO(data), quiet=True) == [sha(cfg)]
    assert service.get("old:format").diff_ids == diff_ids
    assert len(service.layers.layers()) == 3
    assert no_staging_left(service)


async def test_gzip_oci_layer_and_a_big_blob_that_is_no_layer(tmp_path: Path) -> None:
    layer = big_layer(b"oci")
    packed = gzip.compress(layer, mtime=0)
    junk = os.urandom(STAGE_MIN + 10)  # unreferenced, not a tar: spooled as before
    cfg = config([sha(layer)])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": sha(packed), "size": len(packed)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/oci:gz"}}]}).encode()
    data = archive([(f"blobs/sha256/{sha(b)[7:]}", b) for b in (packed, junk, cfg, manifest)]
                   + [("index.json", index), ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')])
    service = ImageService(tmp_path / "s", EventBus())
    assert await service.load(io.BytesIO(data), quiet=True) == [sha(cfg)]
    assert service.get("oci:gz").diff_ids == [sha(layer)]
    assert no_staging_left(service)


async def test_forged_big_layer_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    real, forged = big_layer(b"real"), big_layer(b"fake")
    cfg = config([sha(real)])
    manifest = [{"Config": "c.json", "RepoTags": ["forged:x"], "Layers": ["l/layer.tar"]}]
    data = archive([("l/layer.tar", forged), ("c.json", cfg), ("manifest.json", json.dumps(manifest).encode())])
    service = ImageService(tmp_path / "s", EventBus())
    with pytest.raises(EngineError, match=f"layer digest mismatch: expected {sha(real)}, got {sha(forged)}"):
        await service.load(io.BytesIO(data), quiet=True)
    assert service.store.ids() == [] and service.layers.layers() == []
    assert no_staging_left(service)


async def test_hostile_names_in_a_big_layer_stay_inside(tmp_path: Path) -> None:
    layer = build([reg("../../escape", b"x" * (STAGE_MIN + 1)), reg("/abs", b"y")])
    cfg = config([sha(layer)])
    manifest = [{"Config": "c.json", "RepoTags": ["hostile:x"], "Layers": ["l/layer.tar"]}]
    data = archive([("l/layer.tar", layer), ("c.json", cfg), ("manifest.json", json.dumps(manifest).encode())])
    service = ImageService(tmp_path / "s", EventBus())
    await service.load(io.BytesIO(data), quiet=True)
    diff = service.layers.get(service.get("hostile:x").chain_id or "").diff_dir
    assert sorted(os.listdir(diff)) == ["abs", "escape"]
    assert not (tmp_path / "escape").exists() and not (tmp_path / "s" / "escape").exists()
