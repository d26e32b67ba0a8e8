"""diff ID -> compressed blobs (dockerd's V2 metadata), and the stores pull and push share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import NotFound
from runtime.images.store import ImageStore
from runtime.statefile import read_json, write_json_atomic
from runtime.storage.content import ContentStore
from runtime.storage.overlay import OverlayLayerStore

KEEP_DEAD = 512  # blob records kept for layers that no longer exist (see LayerBlobIndex.prune)
GZIP_MEDIA_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
})


@dataclass(frozen=True, slots=True)
class BlobRecord:
    digest: str
    size: int
    media_type: str
    sources: tuple[str, ...] = ()  # "<registry>/<path>" of repositories known to hold it

    @property
    def is_gzip(self) -> bool:
        return self.media_type in GZIP_MEDIA_TYPES


class LayerBlobIndex:
    """diff ID -> compressed blobs (dockerd's V2 metadata), persisted in ``path``.

    The blobs themselves live in the content store; :meth:`prune` removes those of layers
    that no longer exist."""

    def __init__(self, path: Path, content: ContentStore) -> None:
        self.path = path
        self.content = content
        self._lock = threading.Lock()
        self._pinned: dict[str, int] = {}
        self._records: dict[str, list[BlobRecord]] = {}
        if path.exists():
            try:
                doc = read_json(path)
            except ValueError:
                doc = {}
            for diff_id, items in (doc.get("diff_ids") or {}).items():
                self._records[diff_id] = [
                    BlobRecord(i["digest"], int(i["size"]), i["mediaType"], tuple(i.get("sources") or ()))
                    for i in items
                ]

    def _save(self) -> None:
        doc = {
            "diff_ids": {
                d: [{"digest": r.digest, "size": r.size, "mediaType": r.media_type, "sources": list(r.sources)} for r in rs]
                for d, rs in self._records.items()
            }
        }
        write_json_atomic(self.path, doc)

    def records(self, diff_id: str) -> list[BlobRecord]:
        with self._lock:
            return list(self._records.get(diff_id, ()))

    def add(self, diff_id: str, digest: str, size: int, media_type: str, source: str | None = None) -> None:
        with self._lock:
            records = self._records.setdefault(diff_id, [])
            for i, r in enumerate(records):
                if r.digest == digest:
                    if source and source not in r.sources:
                        records[i] = BlobRecord(r.digest, r.size, r.media_type, (*r.sources, source)[-16:])
                        self._save()
                    return
            records.append(BlobRecord(digest, size, media_type, (source,) if source else ()))
            self._save()

    def pin(self, digest: str) -> None:
        with self._lock:
            self._pinned[digest] = self._pinned.get(digest, 0) + 1

    def unpin(self, digest: str) -> None:
        with self._lock:
            n = self._pinned.get(digest, 0) - 1
            if n > 0:
                self._pinned[digest] = n
            else:
                self._pinned.pop(digest, None)

    def prune(self, live_diff_ids: Iterable[str]) -> list[str]:
        """Delete the stored blobs of layers not in ``live_diff_ids`` (except blobs an
        operation in flight pinned). Returns the deleted digests.

        The records themselves stay, as dockerd keeps its V2 metadata after ``rmi``: the
        same layer imported, pushed or pulled again is then "Layer already exists" or
        mounted in a registry that has its blob, instead of compressed and uploaded again.
        Only the most recent :data:`KEEP_DEAD` dead layers are remembered."""
        live = set(live_diff_ids)
        removed: list[str] = []
        with self._lock:
            dead = [d for d in self._records if d not in live]
            for diff_id in dead:
                for r in self._records[diff_id]:
                    if r.digest in self._pinned or not self.content.exists(r.digest):
                        continue
                    try:
                        self.content.delete(r.digest)
                        removed.append(r.digest)
                    except NotFound:
                        pass
            forget = dead[: max(0, len(dead) - KEEP_DEAD)]
            for diff_id in forget:
                if not any(r.digest in self._pinned for r in self._records[diff_id]):
                    del self._records[diff_id]
            if removed or forget:
                self._save()
        return removed


@dataclass
class Stores:
    """The image service's stores and hooks, as pull and push use them."""

    store: ImageStore
    layers: OverlayLayerStore
    blobs: LayerBlobIndex
    lock: threading.RLock
    pin: Callable[[str], None]
    unpin: Callable[[Sequence[str]], None]

    @property
    def content(self) -> ContentStore:
        return self.blobs.content

    def live_diff_ids(self) -> set[str]:
        return {layer.diff_id for layer in self.layers.layers()}
