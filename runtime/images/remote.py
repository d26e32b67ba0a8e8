"""``docker pull``, ``push``, ``login``, distribution inspect and search for
:class:`~runtime.images.service.ImageService`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from runtime.errors import InvalidParameter, NotFound, Unavailable
from runtime.images.auth import AuthConfig
from runtime.images.blobindex import Stores
from runtime.images.distinspect import DistributionInfo, inspect_distribution
from runtime.images.endpoints import RegistryOptions
from runtime.images.platform import Platform
from runtime.images.pull import Puller, PullResult
from runtime.images.push import Pusher, PushResult
from runtime.images.reference import Reference
from runtime.images.registry import default_user_agent, login, new_session
from runtime.images.servicebase import ProgressFn, ServiceBase


class RemoteOps(ServiceBase):
    def configure_registries(self, insecure: Sequence[str] = (), mirrors: Sequence[str] = ()) -> None:
        """The daemon's ``insecure-registries`` and ``registry-mirrors`` (InvalidParameter
        for a malformed entry). Loopback registries are insecure without configuration."""
        self.registries = RegistryOptions(tuple(insecure), tuple(mirrors))

    def _stores(self) -> Stores:
        return Stores(self.store, self.layers, self.blobs, self._lock, self._pin, self._unpin)

    def _distribution_event(self, action: str, ref: Reference) -> None:
        attributes: dict[str, str] = {}
        try:
            attributes.update({k: str(v) for k, v in self.get(ref.familiar).labels.items()})
        except (NotFound, InvalidParameter):
            pass
        attributes["name"] = ref.familiar_name
        self.events.publish("image", action, ref.familiar, attributes)

    async def pull(
        self, ref: Reference, auth: AuthConfig, progress: ProgressFn, *, all_tags: bool = False, platform: str = ""
    ) -> PullResult:
        """``docker pull``: ``ref`` with a tag or digest, or a bare name with ``all_tags``.
        ``progress`` gets dockerd's pull records on the loop; errors raised before the first
        record are the request's errors (404 for an unknown manifest)."""
        wanted = Platform.parse(platform) if platform else None
        await asyncio.to_thread(self.blobs.prune, [layer.diff_id for layer in self.layers.layers()])
        puller = Puller(self._stores(), self.registries, auth, progress, default_user_agent(self.engine_version), wanted)
        result = await puller.pull(ref, all_tags=all_tags)
        self._distribution_event("pull", ref if all_tags else ref.with_default_tag())
        return result

    async def push(self, ref: Reference, auth: AuthConfig, progress: ProgressFn) -> list[PushResult]:
        """``docker push`` of ``ref``'s tag, or of every tag of the repository."""
        pusher = Pusher(self._stores(), self.registries, auth, progress, default_user_agent(self.engine_version))
        results = await pusher.push(ref)
        for result in results:
            self._distribution_event("push", ref.trimmed().with_tag(result.tag))
        return results

    async def login(self, auth: AuthConfig) -> str:
        """``POST /auth``: check the credentials against the registry; returns the identity
        token it issued ("" for most registries)."""
        async with new_session() as session:
            return await login(session, self.registries, auth, default_user_agent(self.engine_version))

    async def inspect_distribution(self, ref: Reference, auth: AuthConfig) -> DistributionInfo:
        """``GET /distribution/{name}/json``."""
        return await inspect_distribution(self.registries, ref, auth, default_user_agent(self.engine_version))

    async def search(self, term: str, limit: int = 25) -> list[dict[str, Any]]:
        """``GET /images/search``: this daemon is not configured with any index registry
        and never contacts the network, so the answer is an immediate, clear error."""
        raise Unavailable(
            f'Get "https://index.docker.io/v1/search?q={term}&n={limit}": '
            "no registry index is reachable from this daemon (searching is not supported)"
        )
