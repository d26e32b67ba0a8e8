"""``docker load``: Docker 25+ archives, the older Docker format and plain OCI layouts.

Load reads what :mod:`runtime.images.save` writes, the older Docker format (``manifest.json``
with ``<id>/layer.tar``) and a plain OCI layout (``index.json``, possibly nested indexes,
gzip/zstd layers). The outer archive is unpacked into a private spool directory (the blobs
come before ``manifest.json``), using the same safe extractor as every other archive, with
one shortcut: a member that looks like a layer tar (tar or compressed, at least
:data:`STAGE_MIN` bytes) is not written to the spool but unpacked straight into a staged
layer as it streams by (hashed on the way, see :class:`_Stager`); the spool keeps an empty
file in its place. Once the manifest is read, a layer path that leads to such a file (also
through the symlinks older archives use for repeated layers) commits the staged layer,
after checking its diff ID. Anything else is read from the spool as before.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain as chained
from pathlib import Path
from typing import Any

from runtime.archive.compression import ChunkReader, Compression, Readable, decompressed_chunks, detect
from runtime.archive.errors import ArchiveError, MalformedArchive
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.archive.rootfd import DIR_FLAGS, RootFD, clean_member_name, discard_path
from runtime.errors import InvalidParameter
from runtime.images.model import Progress
from runtime.images.reference import InvalidReference, Reference, parse_normalized_named
from runtime.images.save import ANNOTATION_IMAGE_NAME, DOCKER_MANIFEST_LIST, MAX_JSON, MEDIA_INDEX
from runtime.images.store import ImageStore
from runtime.storage.digest import chain_ids, hex_of
from runtime.storage.overlay import OverlayLayerStore, StagedLayer
from runtime.storage.snapshots import Layer

Emit = Callable[[Progress], None]
STAGE_MIN = 1 << 20  # smaller members are spooled, whatever they are
_MAX_LINKS = 40  # symlinks followed in one path, as Linux's limit


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
        """Open ``rel`` for reading; symlinks (also the last component, as dockerd 20.10
        links a repeated ``<id>/layer.tar`` to the first copy) are followed inside the
        spool only."""
        path = clean_member_name(rel)
        if not path:
            raise InvalidParameter(f"invalid path in archive: {rel!r}")
        try:
            for _hop in range(_MAX_LINKS):
                parent, name = self._rootfd.parent_of(path)
                with self._rootfd.hold(parent):
                    try:
                        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
                    except OSError as exc:
                        if exc.errno != errno.ELOOP:
                            raise
                        target = os.readlink(name, dir_fd=parent.fd)
                # relative to the link's directory, or to the spool's root when absolute
                path = clean_member_name(target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target))
                if not path:
                    break
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
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


def _looks_like_layer(head: bytes) -> bool:
    return detect(head) is not Compression.NONE or head[257:262] == b"ustar"


class _Stager:
    """Unpacks layer-like members of the outer archive into staged layers (see module
    docs), keyed by the inode of the empty file left in the spool."""

    def __init__(self, layers: OverlayLayerStore) -> None:
        self.layers = layers
        # inode -> (member size, staged layer | the layer it became | why it failed)
        self.found: dict[tuple[int, int], tuple[int, StagedLayer | Layer | BaseException]] = {}

    def __call__(self, path: str, size: int, fd: int, content: Iterator[bytes]) -> None:
        pieces: list[bytes] = []
        have = 0
        for piece in content:
            pieces.append(piece)
            have += len(piece)
            if have >= 512:
                break
        head = b"".join(pieces)
        rest = chained((head,), content)
        if not _looks_like_layer(head):
            for piece in rest:
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
            return
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        try:
            # not threaded: the inflating thread would read the outer archive, which this
            # thread reads again as soon as the member is done (or refused)
            _kind, chunks = decompressed_chunks(ChunkReader(rest), threaded=False)
            self.found[key] = (size, self.layers.stage(chunks))
        except (ArchiveError, MalformedArchive) as exc:
            # refused only if the manifest names it as a layer (then with this error)
            self.found[key] = (size, exc)

    def lookup(self, fd: int) -> tuple[tuple[int, int], int, StagedLayer | Layer | BaseException] | None:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key not in self.found:
            return None
        size, what = self.found[key]
        return key, size, what

    def discard(self) -> None:
        for _size, what in self.found.values():
            if isinstance(what, StagedLayer):
                self.layers.discard_staged(what)


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
    stager = _Stager(layers)
    try:
        _kind, outer = decompressed_chunks(source)
        extract_chunks(outer, spool_dir, ExtractOptions(whiteouts=WhiteoutMode.KEEP, preserve_owner=False),
                       divert=(STAGE_MIN, stager))
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
                image_id = _load_one(spool, stager, target, store, layers, emit, quiet, pin)
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
        stager.discard()
        discard_path(spool_dir)


def _load_one(
    spool: _Spool,
    stager: _Stager,
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
            fd = spool.open(path)
            found = stager.lookup(fd)
            if found is None:
                total = os.fstat(fd).st_size
                report = _layer_progress(emit, short, total) if not quiet else _no_progress
                reader = _CountingReader(fd, total, report)
                try:
                    _kind, chunks = decompressed_chunks(reader)
                    layers.register(chunks, parent_chain, expected_diff_id=diff_id)
                finally:
                    reader.close()
            else:
                os.close(fd)
                _commit_staged(stager, found, layers, parent_chain, diff_id)
                if not quiet:
                    _layer_progress(emit, short, found[1])(found[1])
        parent_chain = chain
    parent = target.parent if target.parent and store.exists(target.parent) else ""
    image_id, _created = store.create(raw, parent=parent)
    return image_id


def _commit_staged(
    stager: _Stager,
    found: tuple[tuple[int, int], int, StagedLayer | Layer | BaseException],
    layers: OverlayLayerStore,
    parent: str | None,
    diff_id: str,
) -> None:
    key, size, what = found
    if isinstance(what, BaseException):
        raise what
    if isinstance(what, Layer):
        # the same blob again, on another parent: unpack it again from the first copy
        layers.register(layers.tar_stream(what.chain_id), parent, expected_diff_id=diff_id)
        return
    layer = layers.commit_staged(what, parent, expected_diff_id=diff_id)
    layers.discard_staged(what)  # when the chain existed already
    stager.found[key] = (size, layer)


def _layer_progress(emit: Emit, short: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        emit(Progress(status="Loading layer", id=short, current=done, total=total))

    return report


def _no_progress(done: int) -> None:
    pass
