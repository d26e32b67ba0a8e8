"""``docker load``: Docker 25+ archives, the older Docker format and plain OCI layouts.

Load reads what :mod:`runtime.images.save` writes, the older Docker format (``manifest.json``
with ``<id>/layer.tar``) and a plain OCI layout (``index.json``, possibly nested indexes,
gzip/zstd layers). The outer archive is unpacked into a private spool directory first (the
blobs come before ``manifest.json``), using the same safe extractor as every other archive.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.archive.compression import Readable, decompressed_chunks
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract
from runtime.archive.rootfd import DIR_FLAGS, RootFD, clean_member_name, discard_path
from runtime.errors import InvalidParameter
from runtime.images.model import Progress
from runtime.images.reference import InvalidReference, Reference, parse_normalized_named
from runtime.images.save import ANNOTATION_IMAGE_NAME, DOCKER_MANIFEST_LIST, MAX_JSON, MEDIA_INDEX
from runtime.images.store import ImageStore
from runtime.storage.digest import chain_ids, hex_of
from runtime.storage.overlay import OverlayLayerStore

Emit = Callable[[Progress], None]


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
