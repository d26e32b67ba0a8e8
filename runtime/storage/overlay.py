"""The overlayfs layer store (see :mod:`runtime.storage.snapshots` for the contract).

Layout under ``<data-root>/overlay2/``::

    layers/<chain-hex>/diff/            the unpacked layer (an overlay lowerdir)
    layers/<chain-hex>/layer.json       {"chain_id", "diff_id", "parent", "size", "tar_size", "link"}
    layers/<chain-hex>/tar-split.*      what is needed to rebuild the exact layer tar
    layers/<chain-hex>/stash/           content the layer's own tar overwrote (rare)
    l/<LINK>  -> ../layers/<chain-hex>/diff     26-character names keep lowerdir short
    mounts/<key>/{diff,work,merged}     writable layers (upper, overlay workdir, mountpoint)
    mounts/<key>/mount.json             {"parent": <chain id> | null}
    empty/                              lowerdir for writable layers without a parent
    tmp/                                staging; a layer appears in layers/ only complete

Mount options must fit in one page (4096 bytes). With absolute ``l/`` paths that is
about 70 layers; beyond that the mount uses relative ``l/...`` paths and
``Mount.chdir`` = the store root, which allows about 140 (dockerd caps images at 128).
:func:`compact_lowerdirs` gives container rootfs mounts the same short form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.archive.errors import DigestMismatch
from runtime.archive.tarsplit import TarSplitRecorder, reassemble
from runtime.errors import Conflict, NotFound, SystemError_
from runtime.statefile import ensure_private_dir, read_json, write_json_atomic
from runtime.storage.digest import chain_id as make_chain_id
from runtime.storage.digest import hex_of
from runtime.storage.snapshots import Layer, LayerNotFound, Mount, is_mounted, unmount
from runtime.archive.rootfd import discard_path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MAX_DEPTH = 128


def _link_name(chain_id: str) -> str:
    digest = hashlib.sha256(chain_id.encode()).digest()
    return base64.b32encode(digest).decode()[:26]


def _options_length(lowerdirs: Sequence[str], fixed: Sequence[str]) -> int:
    return len(",".join(("lowerdir=" + ":".join(lowerdirs), *fixed)))


def _link_lowerdirs(root: Path, links: Sequence[str],
                    fixed: Sequence[str]) -> tuple[list[str], str | None]:
    """Layers named by their ``l/`` links, and the chdir that needs: absolute paths while
    ``lowerdir=`` plus the ``fixed`` options fit in one page, else relative to ``root``."""
    absolute = [str(root / "l" / link) for link in links]
    if _options_length(absolute, fixed) < PAGE_SIZE:
        return absolute, None
    relative = [f"l/{link}" for link in links]
    if _options_length(relative, fixed) >= PAGE_SIZE:
        raise SystemError_(f"too many layers to mount ({len(links)})")
    return relative, str(root)


def _store_links(lowerdirs: Sequence[str]) -> tuple[Path, list[str]] | None:
    """(store root, link names) when every dir is ``<root>/layers/<hex>/diff`` of one
    store and that store's ``l/<link>`` points at it; None otherwise."""
    roots: set[Path] = set()
    links: list[str] = []
    for d in lowerdirs:
        diff = Path(d)
        layer = diff.parent
        if diff.name != "diff" or layer.parent.name != "layers" or not diff.is_absolute():
            return None
        root = layer.parent.parent
        link = _link_name("sha256:" + layer.name)
        try:
            if os.readlink(root / "l" / link) != f"../layers/{layer.name}/diff":
                return None
        except OSError:
            return None
        roots.add(root)
        links.append(link)
    if len(roots) != 1:
        return None
    return roots.pop(), links


def compact_lowerdirs(lowerdirs: Sequence[str], upperdir: str,
                      workdir: str) -> tuple[tuple[str, ...], str | None]:
    """(lowerdirs, chdir) to mount a container rootfs with options of at most one page.

    ``lowerdirs`` are layer diff dirs (:meth:`OverlayLayerStore.lowerdirs`, top first).
    They are kept while ``lowerdir=...,upperdir=...,workdir=...`` fits; beyond that, when
    they are layers of one store, they become that store's ``l/`` links as
    :meth:`OverlayLayerStore.mounts` names them: absolute, or relative to the store root,
    which is then the returned chdir (mount from that cwd). Other paths are returned
    unchanged with no chdir.
    """
    fixed = (f"upperdir={upperdir}", f"workdir={workdir}")
    if _options_length(lowerdirs, fixed) < PAGE_SIZE:
        return tuple(lowerdirs), None
    located = _store_links(lowerdirs)
    if located is None:
        return tuple(lowerdirs), None
    root, links = located
    lower, chdir = _link_lowerdirs(root, links, fixed)
    return tuple(lower), chdir


def _overlay_extra_options() -> tuple[str, ...]:
    # "index=off": as dockerd, so lower dirs can be shared by many mounts safely
    if os.path.exists("/sys/module/overlay/parameters/index"):
        return ("index=off",)
    return ()


class RWLayerNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"writable layer does not exist: {key}")


@dataclass(frozen=True, slots=True)
class StagedLayer:
    """An unpacked layer tar waiting to be registered (see :meth:`OverlayLayerStore.stage`)."""

    path: Path  # the staging directory (``diff/`` and the tar-split record)
    diff_id: str
    size: int
    tar_size: int


class OverlayLayerStore:
    def __init__(self, root: Path) -> None:
        self.root = ensure_private_dir(root)
        self.layers_dir = self.root / "layers"
        self.links_dir = self.root / "l"
        self.mounts_dir = self.root / "mounts"
        self.tmp_dir = self.root / "tmp"
        self.empty_dir = self.root / "empty"
        for d in (self.layers_dir, self.links_dir, self.mounts_dir, self.tmp_dir, self.empty_dir):
            d.mkdir(exist_ok=True)
        os.chmod(self.empty_dir, 0o755)
        for stale in self.tmp_dir.iterdir():
            discard_path(stale)
        self._lock = threading.RLock()
        self._layers: dict[str, Layer] = {}
        self._links: dict[str, str] = {}
        for entry in self.layers_dir.iterdir():
            meta = entry / "layer.json"
            if not meta.is_file():
                discard_path(entry)
                continue
            doc = read_json(meta)
            self._layers[doc["chain_id"]] = Layer(
                chain_id=doc["chain_id"],
                diff_id=doc["diff_id"],
                parent=doc["parent"],
                size=int(doc["size"]),
                diff_dir=entry / "diff",
                tar_size=int(doc.get("tar_size", 0)),
            )
            self._links[doc["chain_id"]] = doc["link"]
        self._extra = _overlay_extra_options()

    # -- read-only layers ------------------------------------------------------------------

    def _layer_dir(self, chain_id: str) -> Path:
        return self.layers_dir / hex_of(chain_id)

    def register(
        self, tar_chunks: Iterable[bytes], parent: str | None, expected_diff_id: str | None = None
    ) -> Layer:
        if parent is not None:
            self._check_parent(parent)
        staged = self.stage(tar_chunks)
        try:
            return self.commit_staged(staged, parent, expected_diff_id)
        finally:
            self.discard_staged(staged)

    def _check_parent(self, parent: str) -> None:
        self.get(parent)
        if self._depth(parent) >= MAX_DEPTH:
            raise SystemError_(f"max depth exceeded ({MAX_DEPTH} layers)")

    def stage(self, tar_chunks: Iterable[bytes]) -> StagedLayer:
        """Unpack a layer tar into a staging directory (with its tar-split record and diff
        ID), not yet a layer: :meth:`commit_staged` makes it one, :meth:`discard_staged`
        removes it. A layer's content does not depend on its parent, so ``docker load``
        stages layers as the archive streams by, before its manifest says where they go."""
        stage = self.tmp_dir / uuid.uuid4().hex
        (stage / "diff").mkdir(parents=True)
        try:
            os.chmod(stage / "diff", 0o755)
            with TarSplitRecorder(stage / "tar-split.log", stage / "tar-split.files", stage / "stash") as rec:
                result = extract_chunks(
                    tar_chunks, stage / "diff", ExtractOptions(whiteouts=WhiteoutMode.OVERLAY), rec
                )
        except BaseException:
            discard_path(stage)
            raise
        return StagedLayer(stage, result.digest, result.size, result.tar_size)

    def commit_staged(self, staged: StagedLayer, parent: str | None, expected_diff_id: str | None = None) -> Layer:
        """Register ``staged`` on top of ``parent`` (checking its diff ID); the layer that
        already has this chain ID if there is one (``staged`` then stays to discard)."""
        if parent is not None:
            self._check_parent(parent)
        if expected_diff_id is not None and staged.diff_id != expected_diff_id:
            raise DigestMismatch(f"layer digest mismatch: expected {expected_diff_id}, got {staged.diff_id}")
        chain = make_chain_id(parent, staged.diff_id)
        link = _link_name(chain)
        layer_doc = {
            "chain_id": chain,
            "diff_id": staged.diff_id,
            "parent": parent,
            "size": staged.size,
            "tar_size": staged.tar_size,
            "link": link,
        }
        write_json_atomic(staged.path / "layer.json", layer_doc)
        with self._lock:
            existing = self._layers.get(chain)
            if existing is not None:
                return existing
            final = self._layer_dir(chain)
            os.rename(staged.path, final)
            link_path = self.links_dir / link
            if link_path.is_symlink():
                link_path.unlink()
            os.symlink(f"../layers/{hex_of(chain)}/diff", link_path)
            layer = Layer(chain, staged.diff_id, parent, staged.size, final / "diff", staged.tar_size)
            self._layers[chain] = layer
            self._links[chain] = link
            return layer

    def discard_staged(self, staged: StagedLayer) -> None:
        """Remove a staged layer that was not committed (no-op after a commit)."""
        if staged.path.exists():
            discard_path(staged.path)

    def _depth(self, chain_id: str) -> int:
        depth = 0
        current: str | None = chain_id
        while current is not None:
            depth += 1
            current = self.get(current).parent
        return depth

    def get(self, chain_id: str) -> Layer:
        layer = self._layers.get(chain_id)
        if layer is None:
            raise LayerNotFound(chain_id)
        return layer

    def exists(self, chain_id: str) -> bool:
        return chain_id in self._layers

    def layers(self) -> list[Layer]:
        return list(self._layers.values())

    def chain(self, chain_id: str | None) -> list[Layer]:
        """``chain_id`` and its ancestors, top first."""
        out: list[Layer] = []
        current = chain_id
        while current is not None:
            layer = self.get(current)
            out.append(layer)
            current = layer.parent
        return out

    def lowerdirs(self, chain_id: str) -> list[Path]:
        return [layer.diff_dir for layer in self.chain(chain_id)]

    def tar_stream(self, chain_id: str) -> Iterator[bytes]:
        layer = self.get(chain_id)
        d = self._layer_dir(chain_id)
        return reassemble(
            d / "tar-split.log", d / "tar-split.files", layer.diff_dir, d / "stash", layer.diff_id
        )

    # -- writable layers -------------------------------------------------------------------

    def _mount_dir(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise NotFound(f"invalid writable layer key: {key!r}")
        return self.mounts_dir / key

    def prepare(self, key: str, parent: str | None) -> Mount:
        if parent is not None:
            self.get(parent)
        d = self._mount_dir(key)
        with self._lock:
            try:
                d.mkdir()
            except FileExistsError:
                raise Conflict(f"writable layer {key} already exists") from None
            try:
                for sub, mode in (("diff", 0o755), ("work", 0o700), ("merged", 0o700)):
                    (d / sub).mkdir()
                    os.chmod(d / sub, mode)
                write_json_atomic(d / "mount.json", {"parent": parent})
            except BaseException:
                discard_path(d)
                raise
        return self._mount_for(d, parent)

    def _mount_for(self, d: Path, parent: str | None) -> Mount:
        links = [self._links[layer.chain_id] for layer in self.chain(parent)]
        upper = f"upperdir={d / 'diff'}"
        work = f"workdir={d / 'work'}"
        if not links:
            empty = f"lowerdir={self.empty_dir}"
            return Mount("overlay", "overlay", (empty, upper, work, *self._extra))
        lowerdirs, chdir = _link_lowerdirs(self.root, links, (upper, work, *self._extra))
        options = ("lowerdir=" + ":".join(lowerdirs), upper, work, *self._extra)
        return Mount("overlay", "overlay", options, chdir=chdir)

    def mounts(self, key: str) -> Mount:
        d = self._mount_dir(key)
        try:
            doc = read_json(d / "mount.json")
        except FileNotFoundError:
            raise RWLayerNotFound(key) from None
        return self._mount_for(d, doc["parent"])

    def upper_dir(self, key: str) -> Path:
        d = self._mount_dir(key)
        if not (d / "mount.json").is_file():
            raise RWLayerNotFound(key)
        return d / "diff"

    def merged_dir(self, key: str) -> Path:
        return self.upper_dir(key).parent / "merged"

    def writable_layers(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for d in self.mounts_dir.iterdir():
            try:
                out[d.name] = read_json(d / "mount.json")["parent"]
            except (FileNotFoundError, ValueError):
                continue
        return out

    def remove(self, key: str) -> None:
        d = self._mount_dir(key)
        if not d.exists():
            raise RWLayerNotFound(key)
        merged = d / "merged"
        if merged.exists() and is_mounted(merged):
            unmount(merged, detach=True)
        with self._lock:
            # rename first so a half-deleted layer is never mistaken for a live one
            doomed = self.tmp_dir / f"rm-{uuid.uuid4().hex}"
            os.rename(d, doomed)
        discard_path(doomed)

    def gc(self, keep: Iterable[str]) -> list[Layer]:
        with self._lock:
            needed: set[str] = set()
            roots = [c for c in keep if c in self._layers]
            roots += [p for p in self.writable_layers().values() if p is not None]
            for chain in roots:
                current: str | None = chain
                while current is not None and current not in needed:
                    needed.add(current)
                    current = self._layers[current].parent if current in self._layers else None
            removed = [layer for chain, layer in self._layers.items() if chain not in needed]
            for layer in removed:
                del self._layers[layer.chain_id]
                link = self._links.pop(layer.chain_id, None)
                if link is not None:
                    try:
                        (self.links_dir / link).unlink()
                    except FileNotFoundError:
                        pass
                doomed = self.tmp_dir / f"rm-{uuid.uuid4().hex}"
                os.rename(self._layer_dir(layer.chain_id), doomed)
        for path in self.tmp_dir.glob("rm-*"):
            discard_path(path)
        return removed

    def used_size(self) -> int:
        return sum(layer.size for layer in self._layers.values())

    def chain_size(self, chain_id: str | None) -> int:
        return sum(layer.size for layer in self.chain(chain_id))

    def layer_json(self, chain_id: str) -> dict[str, object]:
        return dict(json.loads((self._layer_dir(chain_id) / "layer.json").read_text()))
