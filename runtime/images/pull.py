"""``docker pull``: manifests, platform selection, verified blob downloads, extraction.

Flow for one tag (or digest), with the progress records dockerd sends::

    GET manifest (tag or digest)         a list/index -> the linux/amd64 (host) entry
    "Pulling from <path>"  id=<tag>      once the manifest is known (errors before: HTTP status)
    GET config blob                      verified: sha256(config) is the image ID
    per layer: "Already exists"          its chain ID is in the layer store
           or: "Pulling fs layer" ... "Downloading" ... "Verifying Checksum"
               ... "Download complete" ... "Extracting" ... "Pull complete"
    "Digest: sha256:<manifest digest>"
    "Status: Downloaded newer image for <ref>" / "Status: Image is up to date for <ref>"

Layers download in parallel (three at a time, like dockerd) into the content store, where the
writer checks the digest before the blob becomes visible, and are unpacked into staged layers
in the same pass (see ``Puller._fetch_layer``); they are committed in order through the layer
store, which checks each diff ID. Compressed blobs stay in the content store and
:class:`~runtime.images.blobindex.LayerBlobIndex` remembers which diff ID they hold and which
repositories have them, so a later push can say "Layer already exists" or mount the blob
without compressing again.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.faults import fault_point
from runtime.archive.compression import MAGIC_LEN, Readable, decompressed_chunks
from runtime.errors import InvalidParameter, NotFound, SystemError_
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.blobindex import Stores
from runtime.images.model import Progress
from runtime.images.platform import Platform, select_manifest
from runtime.images.progress import Emit, Rate, bar, mark, short_digest
from runtime.images.reference import Reference
from runtime.images.endpoints import RegistryOptions
from runtime.images.registry import (
    CONFIG_LIMIT,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_SCHEMA1,
    MEDIA_DOCKER_SCHEMA1_SIGNED,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Manifest,
    RegistryError,
    Repository,
    TransportError,
    endpoints_for,
    new_session,
    open_repository,
)
from runtime.images.streams import BlockingReader
from runtime.storage.content import DigestMismatchError
from runtime.storage.digest import chain_ids, validate
from runtime.storage.overlay import StagedLayer

MAX_CONCURRENT_DOWNLOADS = 3  # dockerd's max-concurrent-downloads default
SCHEMA1_REMOVED = (
    "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
    "support has been removed. Suggest the author of {ref} to upgrade the image to the OCI "
    "Format or Docker Image manifest v2, schema 2."
)


@dataclass(frozen=True, slots=True)
class PullResult:
    image_id: str  # of the last tag pulled ("" if none)
    updated: bool
    digest: str  # the manifest digest (of the list/index when there was one)


def translate_pull_error(exc: BaseException, ref: Reference) -> BaseException:
    """dockerd's ``TranslatePullError``: registry errors that mean "no such image"
    become NotFound (404) with its texts; the rest stay what they are (500)."""
    if isinstance(exc, RegistryError):
        message = str(exc).partition(": ")[2] or str(exc)
        if exc.code == "DENIED":
            return NotFound(
                f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
                f"'docker login': {message}"
            )
        if exc.code == "MANIFEST_UNKNOWN":
            return NotFound(f"manifest for {ref.familiar} not found: {exc}")
        if exc.code == "NAME_UNKNOWN":
            return NotFound(f"repository {ref.familiar_name} not found: {exc}")
    return exc


# ---- pulling -------------------------------------------------------------------------------


class Puller:
    """One ``docker pull`` (of a tag, a digest, or every tag of a repository)."""

    def __init__(
        self,
        stores: Stores,
        options: RegistryOptions,
        auth: AuthConfig,
        emit: Emit,
        user_agent: str,
        platform: Platform | None = None,
    ) -> None:
        self.stores = stores
        self.options = options
        self.auth = auth
        self.emit = emit
        self.user_agent = user_agent
        self.platform = platform or Platform.host()
        # a single-arch image of another platform is pulled anyway unless one was asked for
        self.platform_requested = platform is not None
        self._pinned_chains: list[str] = []
        self._pinned_blobs: list[str] = []

    async def pull(self, ref: Reference, all_tags: bool = False) -> PullResult:
        """Pull ``ref`` (``all_tags``: every tag of ``ref``'s repository; otherwise a bare
        name means its ``latest`` tag)."""
        if not all_tags:
            ref = ref.with_default_tag()
        async with new_session() as session:
            try:
                repo, first = await self._connect(session, ref, all_tags)
                if all_tags:
                    tags = first if isinstance(first, list) else []
                    if not tags:
                        raise NotFound(f"no tags found for {ref.familiar_name}")
                    result = PullResult("", False, "")
                    for tag in tags:
                        one = await self._pull_one(repo, ref.trimmed().with_tag(tag), None)
                        result = PullResult(one.image_id, result.updated or one.updated, one.digest)
                else:
                    assert isinstance(first, Manifest)
                    result = await self._pull_one(repo, ref, first)
            except (RegistryError, AuthError, TransportError, NotFound) as exc:
                raise translate_pull_error(exc, ref) from exc
            finally:
                self.stores.unpin(self._pinned_chains)
                for digest in self._pinned_blobs:
                    self.stores.blobs.unpin(digest)
        status = "Downloaded newer image for" if result.updated else "Image is up to date for"
        self.emit(Progress(status=f"Status: {status} {ref.familiar}"))
        return result

    async def _connect(self, session: Any, ref: Reference, all_tags: bool) -> tuple[Repository, Manifest | list[str]]:
        """The first endpoint that answers (mirrors first for Docker Hub, HTTPS before
        HTTP for insecure registries), with the tag list or the manifest it gave."""
        last: BaseException | None = None
        for endpoint in await endpoints_for(self.options, ref.domain, mirrors=True):
            try:
                repo = await open_repository(session, endpoint, ref, self.auth, ("pull",), self.user_agent)
                if all_tags:
                    return repo, await repo.tags()
                reference = ref.digest or ref.tag or "latest"
                return repo, await repo.get_manifest(reference)
            except (TransportError, RegistryError, AuthError) as exc:
                if isinstance(exc, TransportError) or endpoint.mirror:
                    last = exc
                    continue
                raise
        assert last is not None
        raise last

    async def _resolve(self, repo: Repository, manifest: Manifest, ref: Reference) -> Manifest:
        """Follow a manifest list / OCI index to this platform's image manifest."""
        for _depth in range(3):
            media = manifest.media_type
            if media in (MEDIA_DOCKER_SCHEMA1, MEDIA_DOCKER_SCHEMA1_SIGNED):
                raise InvalidParameter(SCHEMA1_REMOVED.format(ref=ref.familiar))
            if media not in (MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX):
                return manifest
            desc = select_manifest(manifest.json(), self.platform)
            digest = validate(str(desc["digest"]))
            manifest = await repo.get_manifest(digest, expected=digest)
        raise SystemError_("manifest list nesting too deep")

    async def _pull_one(self, repo: Repository, ref: Reference, manifest: Manifest | None) -> PullResult:
        reference = ref.digest or ref.tag or "latest"
        if manifest is None:
            manifest = await repo.get_manifest(reference)
        top_digest = manifest.digest
        image_manifest = await self._resolve(repo, manifest, ref)
        if image_manifest.media_type not in (MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST):
            raise SystemError_(f"unsupported manifest media type: {image_manifest.media_type or 'unknown'}")
        doc = image_manifest.json()
        config_desc = doc.get("config") or {}
        layer_descs = [d for d in doc.get("layers") or [] if isinstance(d, Mapping)]
        image_id = validate(str(config_desc.get("digest", "")))
        self.emit(Progress(status=f"Pulling from {ref.path}", id=(ref.tag or "latest") if ref.digest is None else ref.familiar))
        if not self.stores.store.exists(image_id):
            raw = await repo.read_blob(image_id, CONFIG_LIMIT)
            diff_ids = self._check_config(raw, layer_descs, ref)
            await self._fetch_layers(repo, ref, layer_descs, diff_ids)
            await asyncio.to_thread(self._create_image, raw)
        self.emit(Progress(status=f"Digest: {top_digest}"))
        updated = await asyncio.to_thread(self._reference, ref, image_id, top_digest)
        return PullResult(image_id, updated, top_digest)

    def _check_config(self, raw: bytes, layer_descs: list[Mapping[str, Any]], ref: Reference) -> list[str]:
        try:
            cfg = json.loads(raw)
        except ValueError as exc:
            raise SystemError_(f"invalid image config: {exc}") from exc
        if not isinstance(cfg, dict):
            raise SystemError_("invalid image config: not an object")
        os_name = str(cfg.get("os") or "linux")
        if os_name != "linux":
            raise SystemError_(f'image operating system "{os_name}" cannot be used on this platform')
        arch = str(cfg.get("architecture") or "")
        if self.platform_requested and arch and not self.platform.matches(os_name, arch, str(cfg.get("variant") or "")):
            raise NotFound(
                f"image with reference {ref.familiar} was found but does not match the specified platform: "
                f"wanted {self.platform}, actual: {os_name}/{arch}"
            )
        diff_ids = [validate(str(d)) for d in ((cfg.get("rootfs") or {}).get("diff_ids") or [])]
        if len(diff_ids) != len(layer_descs):
            raise SystemError_("layers from manifest don't match image configuration")
        return diff_ids

    # -- layers ----------------------------------------------------------------------------

    async def _fetch_layers(
        self, repo: Repository, ref: Reference, layer_descs: list[Mapping[str, Any]], diff_ids: list[str]
    ) -> None:
        chains = chain_ids(diff_ids)
        for chain in chains:
            self.stores.pin(chain)  # before the existence checks: no GC in between
            self._pinned_chains.append(chain)
        digests = [validate(str(d.get("digest", ""))) for d in layer_descs]
        for desc in layer_descs:
            # the size bounds the download: a descriptor without one is refused
            if not isinstance(desc.get("size"), int) or desc["size"] <= 0:
                raise SystemError_(f"invalid layer descriptor (size {desc.get('size')!r}) for {desc.get('digest')}")
        for digest in digests:
            self.stores.blobs.pin(digest)
            self._pinned_blobs.append(digest)
        needed: list[int] = []
        for i, (chain, digest) in enumerate(zip(chains, digests)):
            if self.stores.layers.exists(chain):
                mark(self.emit, "Already exists", short_digest(digest))
            else:
                mark(self.emit, "Pulling fs layer", short_digest(digest))
                needed.append(i)
        if not needed:
            return
        slots = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
        fetches: dict[int, asyncio.Task[StagedLayer]] = {}
        source = f"{ref.domain}/{ref.path}"
        for n, i in enumerate(needed):
            if n >= MAX_CONCURRENT_DOWNLOADS:
                mark(self.emit, "Waiting", short_digest(digests[i]))
            fetches[i] = asyncio.ensure_future(
                self._fetch_layer(repo, slots, layer_descs[i], digests[i], diff_ids[i], source)
            )
        layers = self.stores.layers
        try:
            for i in needed:
                staged = await fetches[i]
                parent = chains[i - 1] if i > 0 else None
                await asyncio.to_thread(layers.commit_staged, staged, parent, diff_ids[i])
                mark(self.emit, "Pull complete", short_digest(digests[i]))
        finally:
            for task in fetches.values():
                if not task.done():
                    task.cancel()
            await asyncio.gather(*fetches.values(), return_exceptions=True)
            for task in fetches.values():
                if not task.cancelled() and task.exception() is None:
                    await asyncio.to_thread(layers.discard_staged, task.result())

    async def _fetch_layer(
        self, repo: Repository, slots: asyncio.Semaphore, desc: Mapping[str, Any], digest: str, diff_id: str,
        source: str,
    ) -> StagedLayer:
        """Download a blob into the content store and unpack it into a staged layer in the
        same pass (up to three layers at a time; a layer's content does not depend on its
        parent, so they are committed in order afterwards, each after its diff ID is
        checked). The bytes go from the socket to the writer (which hashes them) and to the
        extractor (which hashes the uncompressed tar). The extractor reads to the end of the
        stream before it is done, and the end comes only after the writer verified the
        digest, so a forged blob is never staged. The progress lines are those of a
        download followed by an extraction, as dockerd sends them."""
        short = short_digest(digest)
        total = int(desc.get("size") or 0)
        # recorded first: if the pull fails later, prune() finds (and removes) the blob
        self.stores.blobs.add(diff_id, digest, total, str(desc.get("mediaType") or ""), source)
        content = self.stores.content
        loop = asyncio.get_running_loop()
        emit = self.emit
        downloaded = threading.Event()
        async with slots:
            if content.exists(digest):
                mark(emit, "Download complete", short)
                downloaded.set()
                with content.open(digest) as f:
                    staged, done = await asyncio.to_thread(self._stage, loop, f, total, short, downloaded)
                bar(emit, "Extracting", short, done, total or done)
                return staged
            writer = content.writer()
            resp = await repo.open_blob(digest)
            failure: list[BaseException] = []
            rate = Rate()

            class _Download:
                done = 0

                async def read(self, n: int = -1) -> bytes:
                    try:
                        chunk = await resp.content.read(n)
                        if not chunk:
                            mark(emit, "Verifying Checksum", short)
                            await asyncio.to_thread(writer.commit, digest)
                            fault_point("pull.after-blob")
                            mark(emit, "Download complete", short)
                            downloaded.set()
                            return b""
                        self.done += len(chunk)
                        if total and self.done > total:
                            raise SystemError_(f"filesystem layer verification failed for digest {digest}")
                        writer.write(chunk)
                        if rate.due():
                            bar(emit, "Downloading", short, self.done, total)
                        return chunk
                    except DigestMismatchError:
                        failure.append(SystemError_(f"filesystem layer verification failed for digest {digest}"))
                        raise failure[-1] from None
                    except BaseException as exc:
                        failure.append(exc)
                        raise

            reader = BlockingReader(_Download(), loop)
            try:
                staged, done = await asyncio.to_thread(self._stage, loop, reader, total, short, downloaded)
            except BaseException as exc:
                writer.abort()
                if failure and failure[0] is not exc:
                    raise failure[0] from None
                raise
            finally:
                reader.close()
                resp.release()
            bar(emit, "Extracting", short, done, total or done)
            return staged

    def _stage(
        self, loop: asyncio.AbstractEventLoop, reader: Readable, total: int, short: str, downloaded: threading.Event
    ) -> tuple[StagedLayer, int]:
        """Unpack (in a thread) what ``reader`` gives into a staged layer; "Extracting"
        lines once the download is complete. Returns it and the count of bytes read."""
        emit = self.emit
        rate = Rate()
        done = 0

        class _Counting:
            def read(self, n: int = -1) -> bytes:
                nonlocal done
                data = reader.read(n)
                done += len(data)
                # (the first read is the compression sniff: not worth a line)
                if data and done > MAGIC_LEN and downloaded.is_set() and rate.due():
                    loop.call_soon_threadsafe(bar, emit, "Extracting", short, done, total or done)
                return data

        _kind, chunks = decompressed_chunks(_Counting())
        return self.stores.layers.stage(chunks), done

    # -- the image and its references ------------------------------------------------------

    def _create_image(self, raw: bytes) -> str:
        with self.stores.lock:
            image_id, _ = self.stores.store.create(raw)
        return image_id

    def _reference(self, ref: Reference, image_id: str, manifest_digest: str) -> bool:
        """Record ``ref`` (and ``name@digest``); True when it now names a different image."""
        store = self.stores.store
        with self.stores.lock:
            if ref.digest is not None:
                if store.lookup_reference(ref) == image_id:
                    return False
                store.add_reference(ref, image_id)
                return True
            store.add_reference(ref.trimmed().with_digest(manifest_digest), image_id)
            if store.lookup_reference(ref) == image_id:
                return False
            store.add_reference(ref, image_id)
            return True
