"""``docker save`` and ``docker load`` archives.

Save writes what Docker 25+ writes: an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/<hex>`` holding configs, OCI manifests and *uncompressed* layer tars named by
their diff ID) plus the Docker ``manifest.json`` and legacy ``repositories``. The archive is
streamed, never staged on disk: layer tars are rebuilt byte for byte from the layer store,
so every diff ID, and therefore the image ID, survives a round trip through any engine.

Load reads that format, the older Docker format (``manifest.json`` with ``<id>/layer.tar``)
and a plain OCI layout (``index.json``, possibly nested indexes, gzip/zstd layers). The
outer archive is unpacked into a private spool directory first (the blobs come before
``manifest.json``), using the same safe extractor as every other archive.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.archive import tarheader as th
from runtime.archive.compression import decompressed_chunks
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract
from runtime.archive.compression import Readable
from runtime.archive.rootfd import DIR_FLAGS, RootFD, clean_member_name
from runtime.errors import InvalidParameter
from runtime.images.model import Image, Progress
from runtime.images.reference import InvalidReference, Reference, parse_normalized_named
from runtime.images.store import ImageStore
from runtime.storage.digest import chain_ids, hex_of, sha256_of
from runtime.storage.overlay import OverlayLayerStore
from runtime.archive.rootfd import discard_path

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
MAX_JSON = 16 << 20

Emit = Callable[[Progress], None]


def go_json(value: Any, newline: bool = False) -> bytes:
    """Go ``encoding/json`` output for documents we generate (HTML-escaped, compact)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode() + (b"\n" if newline else b"")


# ---- save -------------------------------------------------------------------------------


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


# ---- load -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LoadTarget:
    config_path: str
    layer_paths: tuple[str, ...]
    tags: tuple[Reference, ...]
    parent: str = ""


class _Spool:
    """The unpacked outer archive; every read is confined to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fd = os.open(root, DIR_FLAGS)
        self._rootfd = RootFD(self._fd)

    def close(self) -> None:
        self._rootfd.close()
        os.close(self._fd)

    def open(self, rel: str) -> int:
        path = clean_member_name(rel)
        if not path:
            raise InvalidParameter(f"invalid path in archive: {rel!r}")
        try:
            parent, name = self._rootfd.parent_of(path)
            with self._rootfd.hold(parent):
                return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
        except FileNotFoundError:
            raise InvalidParameter(f"open {rel}: no such file or directory") from None
        except OSError as exc:
            raise InvalidParameter(f"open {rel}: {os.strerror(exc.errno or 0).lower()}") from exc

    def exists(self, rel: str) -> bool:
        try:
            os.close(self.open(rel))
            return True
        except InvalidParameter:
            return False

    def read(self, rel: str, limit: int = MAX_JSON) -> bytes:
        fd = self.open(rel)
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidParameter(f"{rel} is too large")
        return data

    def read_json(self, rel: str) -> Any:
        try:
            return json.loads(self.read(rel))
        except ValueError as exc:
            raise InvalidParameter(f"invalid JSON in {rel}: {exc}") from exc

    def size(self, rel: str) -> int:
        fd = self.open(rel)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)


def _blob_path(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    if not algorithm or not encoded or "/" in encoded:
        raise InvalidParameter(f"invalid digest {digest!r}")
    return f"blobs/{algorithm}/{encoded}"


def _docker_targets(spool: _Spool) -> list[_LoadTarget]:
    items = spool.read_json("manifest.json")
    if not isinstance(items, list):
        raise InvalidParameter("invalid manifest.json")
    targets = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("Config"), str):
            raise InvalidParameter("invalid manifest.json")
        tags = []
        for text in item.get("RepoTags") or []:
            ref = parse_normalized_named(text)
            if ref.tag is None:
                raise InvalidParameter(f"invalid tag {text!r}")
            tags.append(ref)
        targets.append(
            _LoadTarget(
                config_path=item["Config"],
                layer_paths=tuple(item.get("Layers") or []),
                tags=tuple(tags),
                parent=str(item.get("Parent") or ""),
            )
        )
    return targets


def _platform_ok(descriptor: Mapping[str, Any], os_name: str, arch: str) -> bool:
    plat = descriptor.get("platform")
    if not isinstance(plat, Mapping):
        return True
    return bool(plat.get("os", os_name) == os_name and plat.get("architecture", arch) == arch)


def _oci_targets(spool: _Spool, os_name: str, arch: str) -> list[_LoadTarget]:
    index = spool.read_json("index.json")
    targets: list[_LoadTarget] = []

    def visit(descriptors: list[Any], names: tuple[Reference, ...], depth: int) -> None:
        if depth > 4:
            raise InvalidParameter("index nesting too deep")
        for desc in descriptors:
            if not isinstance(desc, Mapping) or not isinstance(desc.get("digest"), str):
                continue
            annotations = desc.get("annotations") or {}
            refs = names
            name = annotations.get(ANNOTATION_IMAGE_NAME)
            if isinstance(name, str):
                try:
                    ref = parse_normalized_named(name).with_default_tag()
                    refs = (*names, ref) if ref.tag is not None else names
                except InvalidReference:
                    pass
            media = desc.get("mediaType")
            doc = spool.read_json(_blob_path(desc["digest"]))
            media = media or doc.get("mediaType")
            if media in (MEDIA_INDEX, DOCKER_MANIFEST_LIST) or "manifests" in doc:
                candidates = [d for d in doc.get("manifests") or [] if _platform_ok(d, os_name, arch)]
                # first matching platform only: one image per index entry, as dockerd does
                visit(candidates[:1], refs, depth + 1)
                continue
            if not _platform_ok(desc, os_name, arch):
                continue
            config = doc.get("config") or {}
            targets.append(
                _LoadTarget(
                    config_path=_blob_path(config.get("digest", "")),
                    layer_paths=tuple(_blob_path(layer["digest"]) for layer in doc.get("layers") or []),
                    tags=refs,
                )
            )

    if not isinstance(index, Mapping):
        raise InvalidParameter("invalid index.json")
    visit(list(index.get("manifests") or []), (), 0)
    # the same manifest listed once per tag: merge into one target
    merged: dict[str, _LoadTarget] = {}
    for t in targets:
        prev = merged.get(t.config_path)
        if prev is None:
            merged[t.config_path] = t
        else:
            tags = prev.tags + tuple(r for r in t.tags if r not in prev.tags)
            merged[t.config_path] = _LoadTarget(prev.config_path, prev.layer_paths, tags, prev.parent)
    return list(merged.values())


@dataclass
class LoadResult:
    image_ids: list[str] = field(default_factory=list)
    tagged: list[tuple[Reference, str]] = field(default_factory=list)


class _CountingReader:
    def __init__(self, fd: int, total: int, on_progress: Callable[[int], None]) -> None:
        self._f = os.fdopen(fd, "rb")
        self.total = total
        self.done = 0
        self._on_progress = on_progress
        self._last = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.done += len(data)
        if self.done - self._last >= (1 << 20) or (not data and self.done != self._last):
            self._last = self.done
            self._on_progress(self.done)
        return data

    def close(self) -> None:
        self._f.close()


def load_archive(
    source: Readable,
    spool_root: Path,
    store: ImageStore,
    layers: OverlayLayerStore,
    host: tuple[str, str],
    emit: Emit,
    quiet: bool,
    on_loaded: Callable[[str], None],
    on_tag: Callable[[Reference, str, str | None], None],
    pin: Callable[[str], None] = lambda chain: None,
) -> LoadResult:
    """Unpack ``source`` into a spool dir under ``spool_root``, then load every image."""
    spool_dir = spool_root / f"load-{uuid.uuid4().hex}"
    spool_dir.mkdir(parents=True, mode=0o700)
    try:
        extract(source, spool_dir, ExtractOptions(whiteouts=WhiteoutMode.KEEP, preserve_owner=False))
        spool = _Spool(spool_dir)
        try:
            if spool.exists("manifest.json"):
                targets = _docker_targets(spool)
            elif spool.exists("index.json"):
                targets = _oci_targets(spool, *host)
            else:
                raise InvalidParameter(
                    "invalid archive: no manifest.json or index.json (not an image archive)"
                )
            result = LoadResult()
            for target in targets:
                image_id = _load_one(spool, target, store, layers, emit, quiet, pin)
                result.image_ids.append(image_id)
                on_loaded(image_id)
                for ref in target.tags:
                    previous = store.add_reference(ref, image_id)
                    if previous is not None:
                        emit(Progress(stream=(
                            f"The image {ref.familiar} already exists, renaming the old one with ID "
                            f"{previous} to empty string\n"
                        )))
                    on_tag(ref, image_id, previous)
                    result.tagged.append((ref, image_id))
                    emit(Progress(stream=f"Loaded image: {ref.familiar}\n"))
                if not target.tags:
                    emit(Progress(stream=f"Loaded image ID: {image_id}\n"))
            return result
        finally:
            spool.close()
    finally:
        discard_path(spool_dir)


def _load_one(
    spool: _Spool,
    target: _LoadTarget,
    store: ImageStore,
    layers: OverlayLayerStore,
    emit: Emit,
    quiet: bool,
    pin: Callable[[str], None],
) -> str:
    raw = spool.read(target.config_path)
    try:
        cfg = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"invalid image config {target.config_path}: {exc}") from exc
    diff_ids = list(((cfg.get("rootfs") or {}) if isinstance(cfg, Mapping) else {}).get("diff_ids") or [])
    if len(diff_ids) != len(target.layer_paths):
        raise InvalidParameter(
            f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(target.layer_paths)}"
        )
    parent_chain: str | None = None
    for diff_id, chain, path in zip(diff_ids, chain_ids(diff_ids), target.layer_paths):
        pin(chain)  # before the existence check: GC must not take it from under us
        if not layers.exists(chain):
            short = hex_of(diff_id)[:12]
            total = spool.size(path)
            report = _layer_progress(emit, short, total) if not quiet else _no_progress
            reader = _CountingReader(spool.open(path), total, report)
            try:
                _kind, chunks = decompressed_chunks(reader)
                layers.register(chunks, parent_chain, expected_diff_id=diff_id)
            finally:
                reader.close()
        parent_chain = chain
    parent = target.parent if target.parent and store.exists(target.parent) else ""
    image_id, _created = store.create(raw, parent=parent)
    return image_id


def _layer_progress(emit: Emit, short: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        emit(Progress(status="Loading layer", id=short, current=done, total=total))

    return report


def _no_progress(done: int) -> None:
    pass


