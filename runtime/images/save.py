"""``docker save``: what Docker 25+ writes, streamed.

An OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>`` holding configs,
OCI manifests and *uncompressed* layer tars named by their diff ID) plus the Docker
``manifest.json`` and legacy ``repositories``. The archive is streamed, never staged on disk:
layer tars are rebuilt byte for byte from the layer store, so every diff ID, and therefore
the image ID, survives a round trip through any engine. ``docker load`` is
:mod:`runtime.images.load`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.archive import tarheader as th
from runtime.errors import InvalidParameter
from runtime.images.model import Image
from runtime.images.reference import InvalidReference, Reference, parse_normalized_named
from runtime.images.store import ImageStore
from runtime.storage.digest import chain_ids, hex_of, sha256_of
from runtime.storage.overlay import OverlayLayerStore

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
MAX_JSON = 16 << 20

def go_json(value: Any, newline: bool = False) -> bytes:
    """Go ``encoding/json`` output for documents we generate (HTML-escaped, compact)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode() + (b"\n" if newline else b"")


@dataclass
class _SaveImage:
    image: Image
    tags: list[Reference] = field(default_factory=list)


def _created_seconds(image: Image) -> int:
    ns = image.created_ns
    return max(ns // 1_000_000_000, 0)


class SavePlan:
    """Everything resolved up front (so errors happen before any byte is sent); iterate
    :meth:`chunks` to produce the archive."""

    def __init__(self, images: list[_SaveImage], layers: OverlayLayerStore) -> None:
        if not images:
            raise InvalidParameter("no images to save")
        self.images = images
        self._layers = layers
        for item in images:
            if not item.image.diff_ids:
                raise InvalidParameter("empty export - not implemented")
            for chain in chain_ids(item.image.diff_ids):
                layers.get(chain)

    @property
    def image_ids(self) -> list[str]:
        return [i.image.id for i in self.images]

    def _manifest_blob(self, image: Image) -> bytes:
        layers = []
        for diff_id, chain in zip(image.diff_ids, chain_ids(image.diff_ids)):
            layers.append({"mediaType": MEDIA_LAYER, "digest": diff_id, "size": self._layers.get(chain).tar_size})
        return go_json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": image.id, "size": len(image.raw_config)},
                "layers": layers,
            }
        )

    def _layer_producer(self, chain: str) -> Callable[[], Iterator[bytes]]:
        return lambda: self._layers.tar_stream(chain)

    def chunks(self, batch: int = 1 << 20) -> Iterator[bytes]:
        """The archive in pieces of about ``batch`` bytes (small pieces are coalesced:
        each piece may cross a thread boundary)."""
        pending: list[bytes] = []
        size = 0
        for piece in self._pieces():
            if len(piece) >= batch and not pending:
                yield piece
                continue
            pending.append(piece)
            size += len(piece)
            if size >= batch:
                yield b"".join(pending)
                pending.clear()
                size = 0
        if pending:
            yield b"".join(pending)

    def _pieces(self) -> Iterator[bytes]:
        # blob name -> (size, mtime, producer); sorted by name as dockerd's directory walk
        blobs: dict[str, tuple[int, int, Callable[[], Iterator[bytes]]]] = {}
        manifest_items: list[dict[str, Any]] = []
        index_descriptors: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        for item in self.images:
            image = item.image
            created = _created_seconds(image)
            raw = image.raw_config
            blobs[hex_of(image.id)] = (len(raw), created, _constant(raw))
            for diff_id, chain in zip(image.diff_ids, chain_ids(image.diff_ids)):
                layer = self._layers.get(chain)
                blobs.setdefault(hex_of(diff_id), (layer.tar_size, created, self._layer_producer(chain)))
            manifest = self._manifest_blob(image)
            manifest_digest = sha256_of(manifest)
            blobs[hex_of(manifest_digest)] = (len(manifest), 0, _constant(manifest))
            descriptor = {"mediaType": MEDIA_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
            for ref in item.tags:
                index_descriptors.append(
                    {**descriptor, "annotations": {ANNOTATION_IMAGE_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag}}
                )
                repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = hex_of(image.diff_ids[-1])
            if not item.tags:
                index_descriptors.append(descriptor)
            entry: dict[str, Any] = {
                "Config": f"blobs/sha256/{hex_of(image.id)}",
                "RepoTags": [r.familiar for r in item.tags] or None,
                "Layers": [f"blobs/sha256/{hex_of(d)}" for d in image.diff_ids],
            }
            if image.parent and image.parent in self.image_ids:
                entry["Parent"] = image.parent
            manifest_items.append(entry)

        yield _dir_header("blobs/")
        yield _dir_header("blobs/sha256/")
        for name in sorted(blobs):
            size, mtime, produce = blobs[name]
            yield _file_header(f"blobs/sha256/{name}", size, mtime)
            written = 0
            for piece in produce():
                written += len(piece)
                yield piece
            if written != size:
                raise InvalidParameter(f"blob {name} changed size while saving ({written} != {size})")
            yield bytes(-size % th.BLOCK)
        index = go_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index_descriptors})
        files = [
            ("index.json", index),
            ("manifest.json", go_json(manifest_items, newline=True)),
            ("oci-layout", OCI_LAYOUT),
        ]
        if repositories:
            files.append(("repositories", go_json(repositories, newline=True)))
        for name, data in files:
            yield _file_header(name, len(data), 0) + data + bytes(-len(data) % th.BLOCK)
        yield bytes(2 * th.BLOCK)


def _constant(data: bytes) -> Callable[[], Iterator[bytes]]:
    return lambda: iter((data,))


def _dir_header(name: str) -> bytes:
    return th.encode_header(th.TarEntry(name=name, type=th.DIR, mode=0o755))


def _file_header(name: str, size: int, mtime: int) -> bytes:
    return th.encode_header(th.TarEntry(name=name, type=th.REG, mode=0o644, size=size, mtime_ns=mtime * 1_000_000_000))


def plan_save(names: list[str], store: ImageStore, layers: OverlayLayerStore) -> SavePlan:
    """Resolve ``names`` as dockerd's ``parseNames`` does: a tag saves that tag, a bare
    repository name saves all its tags, an ID or digest saves the image untagged."""
    by_id: dict[str, _SaveImage] = {}

    def add(image_id: str, ref: Reference | None) -> None:
        item = by_id.get(image_id)
        if item is None:
            item = by_id[image_id] = _SaveImage(store.get(image_id))
        if ref is not None and ref.digest is None and ref not in item.tags:
            item.tags.append(ref)

    for name in names:
        try:
            ref = parse_normalized_named(name)
        except InvalidReference:
            add(store.resolve(name), None)
            continue
        if ref.is_name_only:
            assoc = [(r, i) for r, i in store.references_by_name(ref.name) if r.tag is not None]
            if assoc:
                for r, image_id in assoc:
                    add(image_id, r)
                continue
            add(store.resolve(name), None)
            continue
        image_id = store.resolve(name)
        add(image_id, ref if store.lookup_reference(ref) == image_id else None)
    return SavePlan(list(by_id.values()), layers)
