"""ImageService: the operations behind the image endpoints.

Cheap lookups (:meth:`ImageService.get`, :meth:`rootfs_lowerdirs`, :meth:`list_images` ...)
are plain methods: everything they read is in memory. Operations that touch disk
(import, load, commit, delete, prune, tag) are coroutines that run the blocking work in a
worker thread. Import/save/load are in :mod:`runtime.images.transfer`, pull/push/login in
:mod:`runtime.images.remote`, the shared state in :mod:`runtime.images.servicebase`. Image events are published on the event loop, in the order dockerd emits
them, with dockerd's attributes (``name`` plus the image's labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.faults import fault_point
from runtime.archive.writer import tar_directory
from runtime.errors import Conflict, ImageNotFound, InvalidParameter, NotFound
from runtime.filters import Filters
from runtime.images import config as imgconfig
from runtime.images.model import (
    EMPTY_LAYER_DIFF_ID,
    DeleteItem,
    HistoryItem,
    Image,
    ImageSummary,
    PruneReport,
)
from runtime.images.reference import (
    Reference,
    familiar_match,
    parse_normalized_named,
    repo_tag_reference,
)
from runtime.images.remote import RemoteOps
from runtime.images.store import not_found_name
from runtime.images.transfer import TransferOps
from runtime.storage.digest import chain_ids
from runtime.storage.snapshots import Mount

LIST_FILTERS = ("dangling", "label", "reference", "before", "since", "until")
PRUNE_FILTERS = ("dangling", "label", "label!", "until")


class ImageDeleteConflict(Conflict):
    def __init__(self, image_id: str, message: str, hard: bool, used: bool = False) -> None:
        self.hard = hard
        self.used = used
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {image_id[7:19]} ({force}) - {message}")


def _short(id_: str) -> str:
    return id_.partition(":")[2][:12] if ":" in id_ else id_[:12]


class ImageService(TransferOps, RemoteOps):
    """See module docs. ``layers`` is also the store for containers' writable layers.
    Import, save and load are :class:`~runtime.images.transfer.TransferOps`; pull, push,
    login and search :class:`~runtime.images.remote.RemoteOps`; the state they share
    :class:`~runtime.images.servicebase.ServiceBase`."""

    # -- lookups ---------------------------------------------------------------------------

    def rootfs_lowerdirs(self, image: Image) -> list[Path]:
        """Overlay lowerdirs for a container of ``image``, top layer first."""
        chain = image.chain_id
        return self.layers.lowerdirs(chain) if chain else []

    def prepare_rootfs(self, key: str, image: Image | None) -> Mount:
        """A writable layer ``key`` on top of ``image`` (None: empty rootfs)."""
        return self.layers.prepare(key, image.chain_id if image is not None else None)

    def graph_driver(self, image: Image) -> dict[str, Any]:
        """``GraphDriver`` of image inspect (overlay2: top layer is UpperDir)."""
        chain = image.chain_id
        if chain is None:
            return {"Name": "overlay2", "Data": None}
        dirs = self.layers.lowerdirs(chain)
        data = {"MergedDir": str(dirs[0].parent / "merged"), "UpperDir": str(dirs[0]), "WorkDir": str(dirs[0].parent / "work")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(str(d) for d in dirs[1:])
        return {"Name": "overlay2", "Data": dict(sorted(data.items()))}

    def history(self, ref: str) -> list[HistoryItem]:
        image = self.get(ref)
        items: list[HistoryItem] = []
        diff_ids = image.diff_ids
        chains = chain_ids(diff_ids)
        layer_index = 0
        for h in image.history:
            size = 0
            if not h.get("empty_layer"):
                if layer_index >= len(diff_ids):
                    raise InvalidParameter("too many non-empty layers in History section")
                size = self._layer_size(chains[layer_index])
                layer_index += 1
            items.insert(
                0,
                HistoryItem(
                    id="<missing>",
                    created=_unix(h.get("created")),
                    created_by=str(h.get("created_by") or ""),
                    tags=(),
                    size=size,
                    comment=str(h.get("comment") or ""),
                ),
            )
        current: Image | None = image
        for i, item in enumerate(items):
            if current is None:
                break
            items[i] = HistoryItem(current.id, item.created, item.created_by, current.repo_tags, item.size, item.comment)
            current = self.store.get(current.parent) if current.parent and self.store.exists(current.parent) else None
        return items

    def _layer_size(self, chain: str) -> int:
        try:
            return self.layers.get(chain).size
        except NotFound:
            return 0

    def list_images(
        self,
        filters: Filters = Filters(),
        all: bool = False,
        shared_size: bool = False,
        container_count: bool = False,
    ) -> list[ImageSummary]:
        """``GET /images/json`` (dockerd's ``Images``), newest first."""
        filters.validate(LIST_FILTERS)
        dangling = filters.bool_value("dangling")
        dangling_only = dangling is True
        before = self._filter_image(filters, "before")
        since = self._filter_image(filters, "since")
        until_ns = filters.until_values()
        selected = self.store.heads() if dangling_only else self.store.ids()
        chain_refs: dict[str, int] = {}
        if shared_size:
            for image_id in self.store.ids():
                for chain in chain_ids(self.store.get(image_id).diff_ids):
                    chain_refs[chain] = chain_refs.get(chain, 0) + 1
        out: list[ImageSummary] = []
        for image_id in selected:
            image = self.store.get(image_id)
            created = image.created_ns
            if before is not None and created >= before.created_ns:
                continue
            if since is not None and created <= since.created_ns:
                continue
            if until_ns and any(created > u for u in until_ns):
                continue
            if not filters.match_labels(image.labels):
                continue
            refs = self.store.references(image_id)
            if filters.has("reference"):
                refs = [r for r in refs if any(familiar_match(p, r) for p in filters.get("reference"))]
            tags = tuple(r.familiar for r in refs if r.tag is not None)
            digests = tuple(r.familiar for r in refs if r.digest is not None)
            if not tags and not digests:
                if all or not self.store.children(image_id):
                    if dangling is False:
                        continue
                    if filters.has("reference"):
                        continue
                else:
                    continue
            elif dangling_only and tags:
                continue
            shown = Image(
                id=image.id, config=image.config, repo_tags=tags, repo_digests=digests,
                created=image.created, size=image.size, parent=image.parent,
                last_tag_time=image.last_tag_time, raw_config=image.raw_config,
            )
            shared = -1
            if shared_size:
                shared = sum(
                    self._layer_size(c) for c in chain_ids(image.diff_ids) if chain_refs.get(c, 0) > 1
                )
            containers = len(self._users(image_id)) if container_count else -1
            out.append(ImageSummary(shown, containers, shared))
        out.sort(key=lambda s: s.image.created_ns, reverse=True)
        return out

    def _filter_image(self, filters: Filters, name: str) -> Image | None:
        values = filters.get(name)
        if not values:
            return None
        return self.get(values[-1])

    # -- tag -------------------------------------------------------------------------------

    async def tag(self, source: str, repo: str, tag: str = "") -> Reference:
        """``POST /images/{name}/tag``."""
        ref = repo_tag_reference(repo, tag)  # dockerd's shared helper, same messages
        if ref is None:
            raise InvalidParameter("repository name must have at least one component")
        if ref.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        image = self.get(source)
        await self._run(self._tag_sync, image.id, ref)
        return ref

    # -- commit ----------------------------------------------------------------------------

    async def commit(
        self,
        parent: Image | None,
        diff_dir: Path | None,
        config: Mapping[str, Any],
        repo_tag: str | None,
        comment: str = "",
        author: str = "",
        *,
        created_by: str = "",
        container_id: str = "",
        container_config: Mapping[str, Any] | None = None,
    ) -> Image:
        """A new image on ``parent``: its layer is ``diff_dir`` (an overlay upper dir,
        whiteouts converted) or, with ``diff_dir`` None, no layer (metadata-only, as the
        builder needs for ENV/CMD steps). ``config`` is the new runtime config."""
        ref = parse_normalized_named(repo_tag).with_default_tag() if repo_tag else None
        if ref is not None and ref.digest is not None:
            raise InvalidParameter("cannot commit to a digest reference")
        image_id = await self._run(
            self._commit_sync, parent, diff_dir, dict(config), ref, comment, author, created_by, container_id, container_config
        )
        return self.store.get(image_id)

    def commit_sync(self, parent: Image | None, diff_dir: Path | None, config: Mapping[str, Any],
                    repo_tag: str | None, comment: str = "", author: str = "", **kw: Any) -> Image:
        """Blocking :meth:`commit` for callers already in a worker thread (events are
        published directly, so only call it where the event bus may be used)."""
        ref = parse_normalized_named(repo_tag).with_default_tag() if repo_tag else None
        image_id = self._commit_sync(
            self._emit_on(None), parent, diff_dir, dict(config), ref, comment, author,
            kw.get("created_by", ""), kw.get("container_id", ""), kw.get("container_config"),
        )
        return self.store.get(image_id)

    def _commit_sync(
        self,
        emit: Any,
        parent: Image | None,
        diff_dir: Path | None,
        config: dict[str, Any],
        ref: Reference | None,
        comment: str,
        author: str,
        created_by: str,
        container_id: str,
        container_config: Mapping[str, Any] | None,
    ) -> str:
        parent_chain = parent.chain_id if parent is not None else None
        diff_id: str | None = None
        pinned: list[str] = []
        if diff_dir is not None:
            layer = self.layers.register(tar_directory(diff_dir), parent_chain)
            self._pin(layer.chain_id)
            pinned.append(layer.chain_id)
            diff_id = layer.diff_id
            fault_point("commit.after-layer")
            if diff_id == EMPTY_LAYER_DIFF_ID:
                diff_id = None  # nothing changed: no layer, as moby's NewChildImage
        try:
            return self._commit_image(emit, parent, diff_id, config, ref, comment, author, created_by, container_id, container_config)
        finally:
            self._unpin(pinned)
            self._gc_layers()

    def _commit_image(
        self,
        emit: Any,
        parent: Image | None,
        diff_id: str | None,
        config: dict[str, Any],
        ref: Reference | None,
        comment: str,
        author: str,
        created_by: str,
        container_id: str,
        container_config: Mapping[str, Any] | None,
    ) -> str:
        doc = imgconfig.child_config(
            parent.config if parent is not None else None,
            diff_id,
            config,
            comment=comment,
            author=author,
            created_by=created_by,
            docker_version=self.engine_version,
            container_id=container_id,
            container_config=container_config,
        )
        raw = imgconfig.encode(doc)
        with self._lock:
            image_id, _ = self.store.create(raw, parent=parent.id if parent is not None else "")
            if ref is not None:
                self._tag_sync(emit, image_id, ref)
        return image_id

    # -- delete ----------------------------------------------------------------------------

    async def delete(self, ref: str, force: bool = False, prune: bool = True) -> list[DeleteItem]:
        """``DELETE /images/{name}`` with dockerd's untag-versus-delete rules."""
        return list(await self._run(self._delete_sync, ref, force, prune))

    def _delete_sync(self, emit: Any, ref_text: str, force: bool, prune: bool) -> list[DeleteItem]:
        with self._lock:
            image_id = self.store.resolve(ref_text)
            records: list[DeleteItem] = []
            refs = self.store.references(image_id)
            removed_repo_ref = False
            if not _is_id_prefix(image_id, ref_text):
                parsed = parse_normalized_named(ref_text)
                if parsed.digest is None:
                    parsed = parsed.with_default_tag()
                if not force and _single_reference(refs):
                    users = self._users(image_id)
                    if users:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{ref_text}" (must force) - '
                            f"container {_short(users[0])} is using its referenced image {_short(image_id)}"
                        )
                if self.store.remove_reference(parsed) is None:
                    raise ImageNotFound(not_found_name(parsed))
                records.append(DeleteItem(untagged=parsed.familiar))
                self._image_event(emit, image_id, image_id, "untag")
                refs = self.store.references(image_id)
                if parsed.digest is None and not any(r.digest is None and r.name == parsed.name for r in refs):
                    remaining = []
                    for r in refs:
                        if r.digest is not None and r.name == parsed.name:
                            self.store.remove_reference(r)
                            records.append(DeleteItem(untagged=r.familiar))
                        else:
                            remaining.append(r)
                    refs = remaining
                if refs:
                    return records
                removed_repo_ref = True
            elif _single_reference(refs):
                self._check_conflict(image_id, force, soft_except_refs=True)
                for r in refs:
                    self.store.remove_reference(r)
                    records.append(DeleteItem(untagged=r.familiar))
                    self._image_event(emit, image_id, image_id, "untag")
            self._delete_helper(emit, image_id, records, force, prune, removed_repo_ref)
            return records

    def _check_conflict(self, image_id: str, force: bool, soft_except_refs: bool = False) -> None:
        if self.store.children(image_id):
            raise ImageDeleteConflict(image_id, "image has dependent child images", hard=True)
        running = self._running(image_id) if self._running is not None else []
        if running:
            raise ImageDeleteConflict(
                image_id, f"image is being used by running container {_short(running[0])}", hard=True, used=True
            )
        if force:
            return
        if not soft_except_refs and self.store.references(image_id):
            raise ImageDeleteConflict(image_id, "image is referenced in multiple repositories", hard=False)
        stopped = [c for c in self._users(image_id) if c not in running]
        if stopped:
            raise ImageDeleteConflict(
                image_id, f"image is being used by stopped container {_short(stopped[0])}", hard=False, used=True
            )

    def _delete_helper(
        self, emit: Any, image_id: str, records: list[DeleteItem], force: bool, prune: bool, quiet: bool
    ) -> None:
        try:
            self._check_conflict(image_id, force)
        except ImageDeleteConflict as conflict:
            is_dangling = not any(r.tag is not None for r in self.store.references(image_id))
            if quiet and (not is_dangling or conflict.used):
                return
            raise
        parent = self.store.parent(image_id)
        for r in self.store.references(image_id):
            self.store.remove_reference(r)
            records.append(DeleteItem(untagged=r.familiar))
            self._image_event(emit, image_id, image_id, "untag")
        self.store.delete(image_id)
        # after the deletion, as dockerd: the event carries no labels any more
        self._image_event(emit, image_id, image_id, "delete")
        records.append(DeleteItem(deleted=image_id))
        for layer in self._gc_layers():
            records.append(DeleteItem(deleted=layer))
        if prune and parent and self.store.exists(parent):
            self._delete_helper(emit, parent, records, False, True, True)

    def _gc_layers(self) -> list[str]:
        keep: set[str] = set(self._inflight)
        for image_id in self.store.ids():
            chain = self.store.get(image_id).chain_id
            if chain is not None:
                keep.add(chain)
        removed = [layer.chain_id for layer in self.layers.gc(keep)]
        if removed:
            self.blobs.prune(layer.diff_id for layer in self.layers.layers())
        return removed

    # -- prune -----------------------------------------------------------------------------

    async def prune(self, filters: Filters = Filters()) -> PruneReport:
        """``POST /images/prune``: dangling images only unless ``dangling=false``."""
        return await self._run(self._prune_sync, filters)  # type: ignore[no-any-return]

    def _prune_sync(self, emit: Any, filters: Filters) -> PruneReport:
        filters.validate(PRUNE_FILTERS)
        dangling = filters.bool_value("dangling")
        dangling_only = dangling is not False
        until = filters.prune_until()
        layer_sizes = {layer.chain_id: layer.size for layer in self.layers.layers()}
        deleted: list[DeleteItem] = []
        with self._lock:
            candidates = self.store.heads() if dangling_only else self.store.ids()
            for image_id in candidates:
                if not self.store.exists(image_id):
                    continue
                image = self.store.get(image_id)
                if until is not None and image.created_ns > until:
                    continue
                if not filters.match_label_filters(image.labels):
                    continue
                if self._users(image_id):
                    continue
                refs = self.store.references(image_id)
                try:
                    if refs:
                        if dangling_only and any(r.tag is not None for r in refs):
                            continue
                        for r in refs:
                            if self.store.lookup_reference(r) is None:
                                continue
                            deleted += self._delete_sync(emit, str(r), False, True)
                    else:
                        deleted += self._delete_sync(emit, image_id[7:], False, True)
                except (Conflict, NotFound):
                    continue
        reclaimed = sum(layer_sizes.get(d.deleted, 0) for d in deleted if d.deleted)
        emit("prune", "", {"reclaimed": str(reclaimed)})
        return PruneReport(tuple(deleted), reclaimed)

    # -- df --------------------------------------------------------------------------------

    def layers_size(self) -> int:
        return self.layers.used_size()


def _unix(created: Any) -> int:
    if not isinstance(created, str) or not created:
        return 0
    from runtime.images.model import _trim_fraction
    from runtime.timefmt import parse_rfc3339

    try:
        return parse_rfc3339(_trim_fraction(created)) // 1_000_000_000
    except ValueError:
        return 0


def _is_id_prefix(image_id: str, ref: str) -> bool:
    """dockerd's ``isImageIDPrefix``: ``ref`` is a prefix of the ID (with or without
    ``sha256:``)."""
    return image_id.startswith(ref) or image_id[7:].startswith(ref)


def _single_reference(refs: list[Reference]) -> bool:
    """At most one tag, and every reference in one repository (dockerd's
    ``isSingleReference``)."""
    tags = [r for r in refs if r.digest is None]
    if len(tags) > 1:
        return False
    names = {r.name for r in refs}
    return len(names) <= 1
