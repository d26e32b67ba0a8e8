"""A client for the Docker Registry HTTP API v2 on ``aiohttp.ClientSession``.

* the endpoints of a registry (options, mirrors, TLS) are :mod:`runtime.images.endpoints`.
* :class:`Repository`: one repository on one endpoint with its :class:`Authenticator`:
  manifests, blobs, uploads (monolithic, chunked, cross-repository mounts), tags.
* :func:`open_repository` pings ``/v2/`` on each endpoint in turn and returns the first
  repository that answers; :func:`login` checks credentials (``POST /auth``).

Transport failures read like Go's (``Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1:
connect: connection refused``) and registry error bodies like distribution's errcode
(``manifest unknown: manifest unknown``), because clients show these texts to users.
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
from yarl import URL

from runtime.errors import SystemError_
from runtime.images.auth import (
    AuthConfig,
    Authenticator,
    AuthError,
    basic_header,
    parse_challenges,
    registry_error_text,
    repository_scope,
)
from runtime.images.endpoints import Endpoint, RegistryOptions, dial_error, index_name, ssl_context
from runtime.images.reference import Reference


MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MANIFEST_ACCEPT = (MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX)
MANIFEST_LIMIT = 4 << 20  # distribution refuses bigger manifests, so do we
CONFIG_LIMIT = 8 << 20
ERROR_BODY_LIMIT = 64 << 10

CONNECT_TIMEOUT = 30.0  # dockerd's dial timeout
READ_TIMEOUT = 120.0


# ---- errors ------------------------------------------------------------------------------


class RegistryError(SystemError_):
    """An error answer of a registry. ``str()`` is distribution's ``code: message``."""

    def __init__(self, status: int, text: str, code: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.code = code  # e.g. "MANIFEST_UNKNOWN", "" when the body had none


class TransportError(SystemError_):
    """The registry could not be reached (the next endpoint may be tried)."""


def _error_code(body: bytes) -> str:
    try:
        doc = json.loads(body)
        return str(doc["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


async def error_from(resp: aiohttp.ClientResponse) -> RegistryError:
    body = await resp.content.read(ERROR_BODY_LIMIT) if resp.method != "HEAD" else b""
    resp.release()
    return RegistryError(resp.status, registry_error_text(resp.status, body), _error_code(body))


def _go_method(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


# ---- transport -----------------------------------------------------------------------------


def new_session() -> aiohttp.ClientSession:
    """A session for one pull/push/login (no proxies from the environment, no cookies)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    return aiohttp.ClientSession(
        timeout=timeout, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
    )


class RegistryTransport:
    """HTTP to one endpoint; failures become :class:`TransportError` with Go's wording."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint, user_agent: str) -> None:
        self.session = session
        self.endpoint = endpoint
        self.user_agent = user_agent
        self._ssl = ssl_context(endpoint)

    def url(self, path: str) -> str:
        return urljoin(self.endpoint.url + "/", path.lstrip("/")) if not path.startswith(("http://", "https://")) else path

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        params: Iterable[tuple[str, str]] | None = None,
        encoded: bool = False,
    ) -> aiohttp.ClientResponse:
        target: str | URL = URL(url, encoded=True) if encoded else url
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        try:
            return await self.session.request(
                method, target, headers=all_headers, data=data, params=list(params) if params else None,
                ssl=self._ssl if str(url).startswith("https://") else False,
            )
        except aiohttp.ClientConnectorError as exc:  # includes TLS failures (ClientSSLError)
            raise TransportError(f'{_go_method(method)} "{url}": {dial_error(exc, exc.host, exc.port or 0)}') from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
            raise TransportError(f'{_go_method(method)} "{url}": {_short_error(exc)}') from exc
        except TimeoutError as exc:
            raise TransportError(
                f'{_go_method(method)} "{url}": net/http: timeout awaiting response headers'
            ) from exc

    async def fetch_token(
        self, method: str, url: str, params: list[tuple[str, str]], basic: tuple[str, str] | None
    ) -> tuple[int, bytes]:
        headers: dict[str, str] = {}
        if basic is not None:
            headers["Authorization"] = basic_header(*basic)
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
            resp = await self.request("POST", url, headers=headers, data=body.encode())
        else:
            resp = await self.request("GET", url, headers=headers, params=params)
        try:
            return resp.status, await resp.content.read(1 << 20)
        finally:
            resp.release()


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "EOF"
    return str(exc) or type(exc).__name__


# ---- manifests and blobs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    digest: str
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body)
        except ValueError as exc:
            raise SystemError_(f"failed to parse manifest {self.digest}: {exc}") from exc
        if not isinstance(doc, dict):
            raise SystemError_(f"failed to parse manifest {self.digest}: not an object")
        return doc


def _media_type(content_type: str, body: bytes) -> str:
    media = content_type.split(";", 1)[0].strip()
    if media in (*MANIFEST_ACCEPT, MEDIA_DOCKER_SCHEMA1, MEDIA_DOCKER_SCHEMA1_SIGNED):
        return media
    try:
        doc = json.loads(body)
    except ValueError:
        return media
    if isinstance(doc, dict):
        if isinstance(doc.get("mediaType"), str):
            return str(doc["mediaType"])
        if doc.get("schemaVersion") == 1:
            return MEDIA_DOCKER_SCHEMA1_SIGNED
        if "manifests" in doc:
            return MEDIA_OCI_INDEX
        if "config" in doc:
            return MEDIA_OCI_MANIFEST
    return media


def sha256_hex(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > limit:
        resp.release()
        raise SystemError_(f"{what} too large: {declared} bytes (limit {limit})")
    data = await resp.content.read(limit + 1)
    if len(data) > limit:
        resp.release()
        raise SystemError_(f"{what} too large (limit {limit} bytes)")
    return data


class Repository:
    """One repository (``path`` such as ``library/busybox``) on one endpoint."""

    def __init__(self, transport: RegistryTransport, auth: Authenticator, path: str, actions: tuple[str, ...]) -> None:
        self.transport = transport
        self.auth = auth
        self.path = path
        self.actions = actions

    @property
    def endpoint(self) -> Endpoint:
        return self.transport.endpoint

    def _scopes(self, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        return (repository_scope(self.path, self.actions), *extra)

    def _url(self, suffix: str) -> str:
        return self.transport.url(f"/v2/{self.path}/{suffix}")

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        params: Iterable[tuple[str, str]] | None = None,
        encoded: bool = False,
        extra_scopes: tuple[str, ...] = (),
        retry: bool = True,
    ) -> aiohttp.ClientResponse:
        """A request with authorization; one retry after a 401 that brings new challenges
        (a registry may allow ``/v2/`` anonymously and ask for credentials later)."""
        all_headers = dict(headers or {})
        # credentials only ever go to the registry itself, not to hosts it points at
        # (upload locations, redirects)
        if urlsplit(url).netloc == urlsplit(self.endpoint.url).netloc:
            try:
                value = await self.auth.header(self._scopes(extra_scopes))
            except AuthError as exc:
                raise AuthError(f'{_go_method(method)} "{url}": {exc}') from exc
            if value:
                all_headers["Authorization"] = value
        resp = await self.transport.request(method, url, headers=all_headers, data=data, params=params, encoded=encoded)
        if resp.status == 401 and retry and isinstance(data, (bytes, type(None))):
            challenges = parse_challenges(resp.headers.getall("WWW-Authenticate", []))
            if challenges and (not self.auth.required or challenges != self.auth.challenges):
                resp.release()
                self.auth.update(challenges)
                return await self.send(
                    method, url, headers=headers, data=data, params=params, encoded=encoded,
                    extra_scopes=extra_scopes, retry=False,
                )
        return resp

    # -- manifests -------------------------------------------------------------------------

    async def resolve_tag(self, tag: str) -> str | None:
        """The digest a tag points at, from ``HEAD`` (None when the registry does not say;
        its errors come from the ``GET`` that follows, which has a body to explain them)."""
        headers = {"Accept": ", ".join(MANIFEST_ACCEPT)}
        resp = await self.send("HEAD", self._url(f"manifests/{tag}"), headers=headers)
        resp.release()
        digest = resp.headers.get("Docker-Content-Digest", "")
        if resp.status == 200 and digest.startswith("sha256:") and len(digest) == 71:
            return digest
        return None

    async def get_manifest(self, reference: str, *, expected: str | None = None) -> Manifest:
        """The manifest ``reference`` (tag or digest) names, verified against the digest
        when it is one. A tag is resolved with ``HEAD`` first, as dockerd's resolver does."""
        if expected is None and not reference.startswith("sha256:"):
            digest = await self.resolve_tag(reference)
            if digest is not None:
                return await self.get_manifest(digest, expected=digest)
        headers = {"Accept": ", ".join(MANIFEST_ACCEPT)}
        resp = await self.send("GET", self._url(f"manifests/{reference}"), headers=headers)
        if resp.status != 200:
            raise await error_from(resp)
        try:
            body = await read_limited(resp, MANIFEST_LIMIT, "manifest")
        finally:
            resp.release()
        digest = sha256_hex(body)
        wanted = expected or (reference if reference.startswith("sha256:") else None)
        if wanted is not None and digest != wanted:
            raise SystemError_(f"manifest verification failed for digest {wanted}")
        return Manifest(_media_type(resp.headers.get("Content-Type", ""), body), digest, body)

    async def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        resp = await self.send(
            "PUT", self._url(f"manifests/{reference}"), headers={"Content-Type": media_type}, data=body
        )
        if resp.status not in (200, 201, 202):
            raise await error_from(resp)
        resp.release()
        return resp.headers.get("Docker-Content-Digest") or sha256_hex(body)

    async def tags(self) -> list[str]:
        resp = await self.send("GET", self._url("tags/list"))
        if resp.status != 200:
            raise await error_from(resp)
        try:
            doc = json.loads(await read_limited(resp, MANIFEST_LIMIT, "tag list"))
        except ValueError as exc:
            raise SystemError_(f"invalid tag list: {exc}") from exc
        finally:
            resp.release()
        return [t for t in (doc.get("tags") or []) if isinstance(t, str)]

    # -- blobs -----------------------------------------------------------------------------

    async def blob_size(self, digest: str) -> int | None:
        """Size of ``digest`` in this repository, None if absent."""
        resp = await self.send("HEAD", self._url(f"blobs/{digest}"))
        resp.release()
        if resp.status == 404:
            return None
        if resp.status not in (200, 307):
            raise await error_from(resp)
        return int(resp.headers.get("Content-Length", "0") or 0)

    async def read_blob(self, digest: str, limit: int) -> bytes:
        resp = await self.send("GET", self._url(f"blobs/{digest}"))
        if resp.status != 200:
            raise await error_from(resp)
        try:
            data = await read_limited(resp, limit, "blob")
        finally:
            resp.release()
        if sha256_hex(data) != digest:
            raise SystemError_(f"blob {digest} failed verification: digest mismatch")
        return data

    async def open_blob(self, digest: str) -> aiohttp.ClientResponse:
        """A streaming response for ``digest`` (the caller verifies and releases it)."""
        resp = await self.send("GET", self._url(f"blobs/{digest}"))
        if resp.status != 200:
            raise await error_from(resp)
        return resp

    def _location(self, resp: aiohttp.ClientResponse) -> str:
        location = resp.headers.get("Location", "")
        if not location:
            raise SystemError_("registry did not return an upload location")
        return urljoin(str(resp.url), location)

    async def mount_blob(self, digest: str, from_path: str) -> str | None:
        """Cross-repository mount; None when mounted, else the upload location the
        registry opened instead."""
        resp = await self.send(
            "POST", self._url("blobs/uploads/"), params=[("mount", digest), ("from", from_path)],
            extra_scopes=(repository_scope(from_path, ("pull",)),),
        )
        if resp.status == 201:
            resp.release()
            return None
        if resp.status == 202:
            resp.release()
            return self._location(resp)
        raise await error_from(resp)

    async def start_upload(self) -> str:
        resp = await self.send("POST", self._url("blobs/uploads/"))
        if resp.status != 202:
            raise await error_from(resp)
        resp.release()
        return self._location(resp)

    async def patch_upload(self, location: str, data: Any, *, start: int | None = None, length: int | None = None) -> str:
        """Send a chunk (bytes, or an async iterator of bytes for a streamed body)."""
        headers = {"Content-Type": "application/octet-stream"}
        if start is not None and length is not None:
            headers["Content-Range"] = f"{start}-{start + length - 1}"
            headers["Content-Length"] = str(length)
        resp = await self.send("PATCH", location, headers=headers, data=data, encoded=True)
        if resp.status not in (202, 204):
            raise await error_from(resp)
        resp.release()
        return self._location(resp)

    async def finish_upload(self, location: str, digest: str, data: Any = None, size: int | None = None) -> None:
        """``PUT <location>?digest=``, with the whole blob (monolithic) or nothing."""
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={quote(digest, safe='')}"
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        elif data is None:
            headers["Content-Length"] = "0"
        resp = await self.send("PUT", url, headers=headers, data=data, encoded=True)
        if resp.status not in (201, 204):
            raise await error_from(resp)
        resp.release()


# ---- connecting ----------------------------------------------------------------------------


async def ping(transport: RegistryTransport) -> list[Any]:
    """``GET /v2/``: the authentication challenges (empty when none are needed)."""
    resp = await transport.request("GET", transport.url("/v2/"))
    try:
        if resp.status == 401:
            return parse_challenges(resp.headers.getall("WWW-Authenticate", []))
        return []
    finally:
        resp.release()


async def endpoints_for(options: RegistryOptions, domain: str, *, mirrors: bool) -> list[Endpoint]:
    if any(options.needs_lookup(h) for h in [domain, *(urlsplit(m).netloc for m in options.mirrors)]):
        return await asyncio.to_thread(options.endpoints, domain, mirrors=mirrors)
    return options.endpoints(domain, mirrors=mirrors)


async def open_repository(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    ref: Reference,
    auth: AuthConfig,
    actions: tuple[str, ...],
    user_agent: str,
) -> Repository:
    """Ping ``endpoint`` and return the repository of ``ref`` on it."""
    transport = RegistryTransport(session, endpoint, user_agent)
    authenticator = Authenticator(auth, transport)
    authenticator.update(await ping(transport))
    return Repository(transport, authenticator, ref.path, actions)


async def login(
    session: aiohttp.ClientSession, options: RegistryOptions, auth: AuthConfig, user_agent: str
) -> str:
    """Check ``auth`` against its registry; returns the identity token (refresh token)
    the registry issued, usually "". Raises with dockerd's texts on failure."""
    domain = index_name(auth.server_address)
    last: Exception | None = None
    for endpoint in await endpoints_for(options, domain, mirrors=False):
        transport = RegistryTransport(session, endpoint, user_agent)
        url = transport.url("/v2/")
        try:
            challenges = await ping(transport)
        except TransportError as exc:
            last = exc
            continue
        if not challenges:
            return ""
        authenticator = Authenticator(auth, transport, offline_token=True)
        authenticator.update(challenges)
        try:
            header = await authenticator.header(())
        except AuthError as exc:
            raise AuthError(f'Get "{url}": {exc}') from exc
        resp = await transport.request("GET", url, headers={"Authorization": header} if header else {})
        resp.release()
        if resp.status == 200:
            return authenticator.refresh_token
        phrase = http.HTTPStatus(resp.status).phrase if resp.status in http.HTTPStatus._value2member_map_ else ""
        raise AuthError(f"login attempt to {url} failed with status: {resp.status} {phrase}".rstrip())
    assert last is not None
    raise last


def default_user_agent(engine_version: str) -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    return f"docker/{engine_version} pydockerd os/linux arch/{arch}"
