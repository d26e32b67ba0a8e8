"""The image store: configs by ID, local metadata, and the reference (tag/digest) index.

Layout under ``<data-root>/image/``::

    content/blobs/sha256/<hex>    image configs (the content store; ID = digest of config)
    images.json                   {image id: {"parent": id | "", "last_tag_time": rfc3339}}
    references.json               {"docker.io/library/busybox:latest": image id, ...}

Both JSON files are replaced atomically (``runtime.statefile``) on every change; an image
exists exactly when it is in ``images.json`` and its config blob is present.

Lookup (``resolve``) follows dockerd's ``GetImage``: a full 64-hex ID or ``sha256:`` digest;
then a reference (``busybox`` means ``docker.io/library/busybox:latest``); then a unique
ID prefix, with or without ``sha256:``. An ambiguous prefix finds nothing, as in dockerd.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.errors import ImageNotFound, InvalidParameter
from runtime.images.model import Image
from runtime.images.reference import InvalidReference, Reference, parse, parse_any
from runtime.statefile import read_json, write_json_atomic
from runtime.storage.content import ContentStore, FileContentStore, put
from runtime.timefmt import rfc3339_nano

_HEX = set("0123456789abcdef")


def not_found_name(ref: Reference | str) -> str:
    """How dockerd names a missing image: ``nosuch:latest`` for a bare name."""
    if isinstance(ref, Reference):
        return ref.with_default_tag().familiar
    return ref


class ImageStore:
    """Thread-safe; all methods are blocking (call them from a worker thread)."""

    def __init__(
        self,
        root: Path,
        content: ContentStore | None = None,
        size_of: Callable[[str | None], int] | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.content = content if content is not None else FileContentStore(root / "content")
        self._size_of = size_of or (lambda chain: 0)
        self._lock = threading.RLock()
        self._images_path = root / "images.json"
        self._refs_path = root / "references.json"
        self._meta: dict[str, dict[str, str]] = {}
        self._refs: dict[str, str] = {}
        self._configs: dict[str, Mapping[str, Any]] = {}
        self._raw: dict[str, bytes] = {}
        self._parse_cache: dict[str, Reference] = {}
        if self._images_path.exists():
            self._meta = dict(read_json(self._images_path))
        if self._refs_path.exists():
            self._refs = dict(read_json(self._refs_path))
        for image_id in list(self._meta):
            try:
                self._load_config(image_id)
            except Exception:
                # a config that vanished or cannot be parsed: drop the image, keep serving
                del self._meta[image_id]
        self._refs = {r: i for r, i in self._refs.items() if i in self._meta}

    # -- persistence -----------------------------------------------------------------------

    def _save(self) -> None:
        write_json_atomic(self._images_path, self._meta)
        write_json_atomic(self._refs_path, self._refs)

    def _load_config(self, image_id: str) -> Mapping[str, Any]:
        raw = self.content.read(image_id)
        cfg = json.loads(raw)
        if not isinstance(cfg, dict):
            raise InvalidParameter("image config is not a JSON object")
        self._raw[image_id] = raw
        self._configs[image_id] = MappingProxyType(cfg)
        return self._configs[image_id]

    # -- images ----------------------------------------------------------------------------

    def create(self, raw_config: bytes, parent: str = "") -> tuple[str, bool]:
        """Store a config and return ``(image id, created)``; ``created`` is False when
        the image already existed (then ``parent`` is only set if it had none)."""
        try:
            cfg = json.loads(raw_config)
        except ValueError as exc:
            raise InvalidParameter(f"invalid image config: {exc}") from exc
        if not isinstance(cfg, dict) or not isinstance(cfg.get("rootfs", {}), dict):
            raise InvalidParameter("invalid image config")
        with self._lock:
            image_id = put(self.content, raw_config)
            existed = image_id in self._meta
            if existed:
                if parent and not self._meta[image_id].get("parent"):
                    self._meta[image_id]["parent"] = parent
                    self._save()
                return image_id, False
            self._raw[image_id] = raw_config
            self._configs[image_id] = MappingProxyType(cfg)
            self._meta[image_id] = {"parent": parent, "last_tag_time": ""}
            self._save()
            return image_id, True

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._meta)

    def exists(self, image_id: str) -> bool:
        return image_id in self._meta

    def get(self, image_id: str) -> Image:
        with self._lock:
            meta = self._meta.get(image_id)
            if meta is None:
                raise ImageNotFound(image_id)
            cfg = self._configs[image_id]
            tags, digests = self._refs_of(image_id)
            created = cfg.get("created")
            return Image(
                id=image_id,
                config=cfg,
                repo_tags=tuple(tags),
                repo_digests=tuple(digests),
                created=created if isinstance(created, str) else "",
                size=self._size_of(Image(id=image_id, config=cfg).chain_id),
                parent=meta.get("parent", ""),
                last_tag_time=meta.get("last_tag_time", ""),
                raw_config=self._raw[image_id],
            )

    def delete(self, image_id: str) -> None:
        """Forget an image and every reference to it (the config blob goes too)."""
        with self._lock:
            if self._meta.pop(image_id, None) is None:
                raise ImageNotFound(image_id)
            self._refs = {r: i for r, i in self._refs.items() if i != image_id}
            for meta in self._meta.values():
                if meta.get("parent") == image_id:
                    meta["parent"] = ""
            self._save()
            self._configs.pop(image_id, None)
            self._raw.pop(image_id, None)
            try:
                self.content.delete(image_id)
            except Exception:
                pass

    def parent(self, image_id: str) -> str:
        return self._meta.get(image_id, {}).get("parent", "")

    def children(self, image_id: str) -> list[str]:
        with self._lock:
            return [i for i, m in self._meta.items() if m.get("parent") == image_id]

    def heads(self) -> list[str]:
        """Images no other image names as its parent."""
        with self._lock:
            parents = {m.get("parent") for m in self._meta.values()}
            return [i for i in self._meta if i not in parents]

    # -- references ------------------------------------------------------------------------

    def _parsed(self, ref_text: str) -> Reference:
        ref = self._parse_cache.get(ref_text)
        if ref is None:
            ref = self._parse_cache[ref_text] = parse(ref_text)
        return ref

    def _refs_of(self, image_id: str) -> tuple[list[str], list[str]]:
        tags, digests = [], []
        for ref_text, target in sorted(self._refs.items()):
            if target != image_id:
                continue
            ref = self._parsed(ref_text)
            if ref.digest is not None:
                digests.append(ref.familiar)
            else:
                tags.append(ref.familiar)
        return tags, digests

    def references(self, image_id: str) -> list[Reference]:
        with self._lock:
            return [self._parsed(r) for r, i in sorted(self._refs.items()) if i == image_id]

    def references_by_name(self, name: str) -> list[tuple[Reference, str]]:
        with self._lock:
            out = []
            for r, i in sorted(self._refs.items()):
                ref = self._parsed(r)
                if ref.name == name:
                    out.append((ref, i))
            return out

    def lookup_reference(self, ref: Reference) -> str | None:
        with self._lock:
            return self._refs.get(str(ref))

    def add_reference(self, ref: Reference, image_id: str, force: bool = True) -> str | None:
        """Point ``ref`` at ``image_id``; returns the image it pointed at before (if other)."""
        with self._lock:
            if image_id not in self._meta:
                raise ImageNotFound(image_id)
            key = str(ref)
            previous = self._refs.get(key)
            if previous == image_id:
                return None
            self._refs[key] = image_id
            self._meta[image_id]["last_tag_time"] = rfc3339_nano(_now_ns())
            self._save()
            return previous

    def remove_reference(self, ref: Reference) -> str | None:
        with self._lock:
            image_id = self._refs.pop(str(ref), None)
            if image_id is not None:
                self._save()
            return image_id

    # -- lookup ----------------------------------------------------------------------------

    def search(self, prefix: str) -> str | None:
        """Unique image ID with this hex prefix (``sha256:`` optional); None if none or
        ambiguous."""
        hex_part = prefix[7:] if prefix.startswith("sha256:") else prefix
        if not hex_part or not set(hex_part) <= _HEX:
            return None
        with self._lock:
            matches = [i for i in self._meta if i[7:].startswith(hex_part)]
        return matches[0] if len(matches) == 1 else None

    def resolve(self, ref_or_id: str) -> str:
        """The image ID ``ref_or_id`` names (see module docs). Raises ImageNotFound with
        dockerd's wording, or InvalidParameter for a malformed reference."""
        try:
            parsed = parse_any(ref_or_id)
        except InvalidReference:
            # dockerd still tries "sha256:<prefix>" forms, which are not valid names
            found = self.search(ref_or_id)
            if found is not None:
                return found
            raise
        if isinstance(parsed, str):
            if parsed in self._meta:
                return parsed
            raise ImageNotFound(parsed)
        target = self.lookup_reference(parsed.with_default_tag() if parsed.digest is None else parsed)
        if target is not None:
            return target
        if parsed.digest is not None and parsed.tag is not None:
            target = self.lookup_reference(parsed.trimmed().with_digest(parsed.digest))
            if target is not None:
                return target
        found = self.search(ref_or_id)
        if found is not None:
            return found
        raise ImageNotFound(not_found_name(parsed))


def _now_ns() -> int:
    import time

    return time.time_ns()

