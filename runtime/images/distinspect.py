"""``GET /distribution/{name}/json``: a manifest's descriptor and platforms, from the registry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import Forbidden, NotFound, Unauthorized
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.reference import Reference
from runtime.images.endpoints import RegistryOptions
from runtime.images.registry import (
    CONFIG_LIMIT,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    RegistryError,
    TransportError,
    endpoints_for,
    new_session,
    open_repository,
)
from runtime.storage.digest import validate


@dataclass(frozen=True, slots=True)
class DistributionInfo:
    """``GET /distribution/{name}/json``: the manifest descriptor and its platforms."""

    media_type: str
    digest: str
    size: int
    platforms: tuple[Mapping[str, Any], ...] = field(default=())


def _platform_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"architecture": str(doc.get("architecture") or ""), "os": str(doc.get("os") or "")}
    for key in ("os.version", "os.features", "variant", "features"):
        if doc.get(key):
            out[key] = doc[key]
    return out


def _categorised(exc: RegistryError) -> BaseException:
    # dockerd answers these with the HTTP status of the registry's error code
    if exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN") or exc.status == 404:
        return NotFound(str(exc))
    if exc.code == "UNAUTHORIZED" or exc.status == 401:
        return Unauthorized(str(exc))
    if exc.code == "DENIED" or exc.status == 403:
        return Forbidden(str(exc))
    return exc


async def inspect_distribution(
    options: RegistryOptions, ref: Reference, auth: AuthConfig, user_agent: str
) -> DistributionInfo:
    """The descriptor of ``ref``'s manifest in its registry; the platforms come from the
    list entries, or from the image config for a single manifest."""
    try:
        return await _inspect_distribution(options, ref, auth, user_agent)
    except RegistryError as exc:
        raise _categorised(exc) from exc


async def _inspect_distribution(
    options: RegistryOptions, ref: Reference, auth: AuthConfig, user_agent: str
) -> DistributionInfo:
    reference = ref.digest or ref.tag or "latest"
    async with new_session() as session:
        last: BaseException | None = None
        for endpoint in await endpoints_for(options, ref.domain, mirrors=True):
            try:
                repo = await open_repository(session, endpoint, ref, auth, ("pull",), user_agent)
                manifest = await repo.get_manifest(reference)
            except (TransportError, RegistryError, AuthError) as exc:
                if isinstance(exc, TransportError) or endpoint.mirror:
                    last = exc
                    continue
                raise
            break
        else:
            assert last is not None
            raise last
        doc = manifest.json()
        platforms: list[Mapping[str, Any]] = []
        if manifest.media_type in (MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX):
            for desc in doc.get("manifests") or []:
                if isinstance(desc, Mapping) and isinstance(desc.get("platform"), Mapping):
                    platforms.append(_platform_of(desc["platform"]))
        elif manifest.media_type in (MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST):
            config_digest = validate(str((doc.get("config") or {}).get("digest", "")))
            cfg = json.loads(await repo.read_blob(config_digest, CONFIG_LIMIT))
            platforms.append(_platform_of(cfg if isinstance(cfg, Mapping) else {}))
        return DistributionInfo(manifest.media_type, manifest.digest, len(manifest.body), tuple(platforms))
