"""``docker push``: layers to blobs, the config, and a schema 2 manifest.

Progress records, as dockerd sends them::

    "The push refers to repository [127.0.0.1:5000/x]"
    per layer, top layer first: "Preparing", then one of
        "Layer already exists"                a blob known for this diff ID is in the repository
        "Mounted from <path>"                 cross-repository mount on the same registry
        "Pushing" (progress) ... "Pushed"     uploaded
    "<tag>: digest: sha256:... size: N"
    aux {"Tag": ..., "Digest": ..., "Size": N}

A layer whose gzip blob is already in the content store (pulled, or pushed before) is
uploaded as stored; otherwise the layer tar is compressed (gzip) while it is streamed to the
registry in one ``PATCH`` and teed into the content store, and the upload is closed with
``PUT ?digest=``. Stored blobs go up in one ``PUT`` or, above ``chunk_size``, in
``PATCH`` chunks with ``Content-Range``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runtime.errors import NotFound
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.model import Image, Progress
from runtime.images.blobindex import BlobRecord, Stores
from runtime.images.progress import Emit, Rate, bar, mark
from runtime.images.reference import DEFAULT_DOMAIN, Reference
from runtime.images.endpoints import DOCKER_HUB_REGISTRY, RegistryOptions
from runtime.images.registry import (
    MEDIA_DOCKER_MANIFEST,
    RegistryError,
    Repository,
    TransportError,
    endpoints_for,
    new_session,
    open_repository,
)
from runtime.images.streams import iterate_in_thread
from runtime.storage.content import ContentWriter
from runtime.storage.digest import chain_ids

MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MAX_CONCURRENT_UPLOADS = 5  # dockerd's max-concurrent-uploads default
CHUNK_SIZE = 32 << 20
# ISA-L's igzip level 2 (its default): standard gzip, ~15x zlib level 6's speed for ~14%
# larger blobs; deterministic (no name or mtime in the header), so a layer pushed twice gets
# the same digest
GZIP_LEVEL = 2
_COALESCE = 256 << 10


@dataclass(frozen=True, slots=True)
class PushResult:
    tag: str
    digest: str
    size: int
    image_id: str


def manifest_bytes(config_digest: str, config_size: int, layers: list[tuple[str, int]]) -> bytes:
    """A schema 2 manifest, indented as Go's ``json.MarshalIndent(m, "", "   ")``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": MEDIA_DOCKER_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "size": size, "digest": digest} for digest, size in layers],
    }
    return json.dumps(doc, indent=3).encode()


def _short(diff_id: str) -> str:
    return diff_id.partition(":")[2][:12]


def _registry_error(exc: AuthError) -> AuthError:
    # a push reports a missing credential without the request in front, as dockerd does
    text = str(exc)
    if text.endswith("no basic auth credentials"):
        return AuthError("no basic auth credentials")
    return exc


class Pusher:
    """One ``docker push`` of a tag, or of every tag of a repository."""

    def __init__(
        self,
        stores: Stores,
        options: RegistryOptions,
        auth: AuthConfig,
        emit: Emit,
        user_agent: str,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.stores = stores
        self.options = options
        self.auth = auth
        self.emit = emit
        self.user_agent = user_agent
        self.chunk_size = chunk_size

    def targets(self, ref: Reference) -> list[tuple[Reference, str]]:
        """``(tagged reference, image ID)`` to push; dockerd's texts when there are none."""
        store = self.stores.store
        if ref.tag is not None:
            image_id = store.lookup_reference(ref)
            if image_id is None:
                raise NotFound(f"tag does not exist: {ref.familiar}")
            return [(ref, image_id)]
        found = [(r, i) for r, i in store.references_by_name(ref.name) if r.tag is not None and r.digest is None]
        if not found:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        return found

    async def push(self, ref: Reference) -> list[PushResult]:
        self.emit(Progress(status=f"The push refers to repository [{ref.name}]"))
        targets = self.targets(ref)
        async with new_session() as session:
            repo = await self._connect(session, ref)
            results = []
            for tagged, image_id in targets:
                try:
                    results.append(await self._push_tag(repo, tagged, self.stores.store.get(image_id)))
                except AuthError as exc:
                    raise _registry_error(exc) from exc
        return results

    async def _connect(self, session: Any, ref: Reference) -> Repository:
        last: BaseException | None = None
        for endpoint in await endpoints_for(self.options, ref.domain, mirrors=False):
            try:
                repo = await open_repository(session, endpoint, ref, self.auth, ("pull", "push"), self.user_agent)
                # the first blob request decides the endpoint (HTTPS may be refused by a
                # plain-HTTP registry only then, if the ping went through a proxy)
                return repo
            except TransportError as exc:
                last = exc
        assert last is not None
        raise last

    async def _push_tag(self, repo: Repository, ref: Reference, image: Image) -> PushResult:
        diff_ids = image.diff_ids
        chains = chain_ids(diff_ids)
        for diff_id in reversed(diff_ids):
            mark(self.emit, "Preparing", _short(diff_id))
        slots = asyncio.Semaphore(MAX_CONCURRENT_UPLOADS)
        order = list(reversed(range(len(diff_ids))))
        for n, i in enumerate(order):
            if n >= MAX_CONCURRENT_UPLOADS:
                mark(self.emit, "Waiting", _short(diff_ids[i]))
        for chain in chains:
            self.stores.pin(chain)
        try:
            tasks = {i: asyncio.ensure_future(self._push_layer(repo, slots, diff_ids[i], chains[i])) for i in order}
            try:
                await asyncio.gather(*tasks.values())
            finally:
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            blobs = [tasks[i].result() for i in range(len(diff_ids))]
        finally:
            self.stores.unpin(chains)
        raw = image.raw_config
        if await repo.blob_size(image.id) is None:
            location = await repo.start_upload()
            await repo.finish_upload(location, image.id, raw, len(raw))
        body = manifest_bytes(image.id, len(raw), [(b.digest, b.size) for b in blobs])
        tag = ref.tag or "latest"
        digest = await repo.put_manifest(tag, body, MEDIA_DOCKER_MANIFEST)
        self.emit(Progress(status=f"{tag}: digest: {digest} size: {len(body)}"))
        self.emit(Progress(aux={"Tag": tag, "Digest": digest, "Size": len(body)}))
        await asyncio.to_thread(self._reference, ref, digest, image.id)
        return PushResult(tag, digest, len(body), image.id)

    def _reference(self, ref: Reference, digest: str, image_id: str) -> None:
        with self.stores.lock:
            if self.stores.store.exists(image_id):
                self.stores.store.add_reference(ref.trimmed().with_digest(digest), image_id)

    # -- layers ----------------------------------------------------------------------------

    async def _push_layer(self, repo: Repository, slots: asyncio.Semaphore, diff_id: str, chain: str) -> BlobRecord:
        short = _short(diff_id)
        source = f"{_domain_of(repo)}/{repo.path}"
        async with slots:
            records = [r for r in self.stores.blobs.records(diff_id) if r.is_gzip]
            for record in records:
                if await repo.blob_size(record.digest) is not None:
                    mark(self.emit, "Layer already exists", short)
                    self.stores.blobs.add(diff_id, record.digest, record.size, record.media_type, source)
                    return record
            location: str | None = None
            registry = _domain_of(repo)
            for record in records:
                for other in record.sources:
                    host, _, path = other.partition("/")
                    if host != registry or path == repo.path:
                        continue
                    try:
                        location = await repo.mount_blob(record.digest, path)
                    except RegistryError:
                        continue
                    if location is None:
                        mark(self.emit, f"Mounted from {path}", short)
                        self.stores.blobs.add(diff_id, record.digest, record.size, record.media_type, source)
                        return record
                    break
                if location is not None:
                    break
            stored = next((r for r in records if self.stores.content.exists(r.digest)), None)
            if location is None:
                location = await repo.start_upload()
            if stored is not None:
                await self._upload_stored(repo, location, stored, short)
                record = BlobRecord(stored.digest, stored.size, MEDIA_LAYER_GZIP)
            else:
                record = await self._upload_compressed(repo, location, chain, short)
        self.stores.blobs.add(diff_id, record.digest, record.size, record.media_type, source)
        mark(self.emit, "Pushed", short)
        return record

    async def _upload_stored(self, repo: Repository, location: str, record: BlobRecord, short: str) -> None:
        total = record.size
        self.stores.blobs.pin(record.digest)
        try:
            rate = Rate()
            sent = 0

            def progress(n: int) -> None:
                nonlocal sent
                sent += n
                if rate.due(final=sent >= total):
                    bar(self.emit, "Pushing", short, sent, total)

            if total <= self.chunk_size:
                data = await asyncio.to_thread(self.stores.content.read, record.digest)
                progress(len(data))
                await repo.finish_upload(location, record.digest, data, len(data))
                return
            offset = 0
            with self.stores.content.open(record.digest) as f:
                while offset < total:
                    data = await asyncio.to_thread(f.read, self.chunk_size)
                    if not data:
                        break
                    location = await repo.patch_upload(location, data, start=offset, length=len(data))
                    offset += len(data)
                    progress(len(data))
            await repo.finish_upload(location, record.digest)
        finally:
            self.stores.blobs.unpin(record.digest)

    async def _upload_compressed(self, repo: Repository, location: str, chain: str, short: str) -> BlobRecord:
        layer = self.stores.layers.get(chain)
        writer = self.stores.content.writer()
        loop = asyncio.get_running_loop()
        rate = Rate()
        emit = self.emit
        total = layer.size

        def report(done: int, final: bool = False) -> None:
            if rate.due(final):
                loop.call_soon_threadsafe(bar, emit, "Pushing", short, done, total)

        chunks = iterate_in_thread(lambda: _gzip_tee(self.stores.layers.tar_stream(chain), writer, report))
        try:
            location = await repo.patch_upload(location, _body(chunks))
            digest = await asyncio.to_thread(writer.commit)
        except BaseException:
            await chunks.aclose()  # type: ignore[attr-defined]  # stops the compressing thread
            writer.abort()
            raise
        size = self.stores.content.size(digest)
        await repo.finish_upload(location, digest)
        return BlobRecord(digest, size, MEDIA_LAYER_GZIP)


async def _body(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk


def _gzip_tee(tar: Iterator[bytes], writer: ContentWriter, report: Callable[[int, bool], None]) -> Iterator[bytes]:
    """gzip ``tar``, writing the compressed bytes to ``writer`` too (runs in a thread)."""
    from isal import isal_zlib

    comp = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    pending: list[bytes] = []
    size = 0
    done = 0
    for piece in tar:
        done += len(piece)
        report(done, False)
        out = comp.compress(piece)
        if out:
            pending.append(out)
            size += len(out)
            if size >= _COALESCE:
                data = b"".join(pending)
                writer.write(data)
                yield data
                pending.clear()
                size = 0
    pending.append(comp.flush())
    data = b"".join(pending)
    writer.write(data)
    report(done, True)
    yield data


def _domain_of(repo: Repository) -> str:
    host = urlsplit(repo.endpoint.url).netloc
    return DEFAULT_DOMAIN if host == DOCKER_HUB_REGISTRY else host
