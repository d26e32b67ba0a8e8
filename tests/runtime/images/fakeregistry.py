"""An in-process registry (API v2 subset) on aiohttp for unit tests of pull, push and auth.

It serves what the tests put in (:meth:`FakeRegistry.put_blob`, :meth:`put_manifest`, or the
image helpers), accepts uploads (monolithic, chunked with ``Content-Range``, streamed PATCH)
and cross-repository mounts, and can demand Basic or Bearer authentication (a token endpoint
on the same server). ``requests`` records ``(method, path)`` of everything it answered;
``corrupt`` makes it serve wrong bytes for a blob digest.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


_ROUTES = [
    ("manifest", re.compile(r"^(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")),
    ("upload", re.compile(r"^(?P<repo>.+)/blobs/uploads/(?P<id>[^/]*)$")),
    ("blob", re.compile(r"^(?P<repo>.+)/blobs/(?P<digest>[^/]+)$")),
    ("tags", re.compile(r"^(?P<repo>.+)/tags/list$")),
]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


@dataclass
class FakeRegistry:
    auth: str = "none"  # "none", "basic", "bearer"
    user: str = "alice"
    password: str = "secret"
    blobs: dict[str, bytes] = field(default_factory=dict)
    repo_blobs: dict[str, set[str]] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (media type, body)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> digest
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    corrupt: set[str] = field(default_factory=set)
    issued_tokens: dict[str, set[str]] = field(default_factory=dict)  # token -> scopes
    refresh_token: str = ""
    blob_delay: float = 0.0  # seconds before a blob GET is answered
    base: str = ""  # http://127.0.0.1:<port>, set once started

    # -- content -------------------------------------------------------------------------

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[digest] = data
        self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(self, repo: str, body: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha256(body)
        self.manifests[digest] = (media_type, body)
        if tag is not None:
            self.tags.setdefault(repo, {})[tag] = digest
        return digest

    # -- auth ----------------------------------------------------------------------------

    def _challenge(self, scope: str) -> dict[str, str]:
        if self.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="fake"'}
        value = f'Bearer realm="{self.base}/token",service="fake-registry"'
        if scope:
            value += f',scope="{scope}"'
        return {"WWW-Authenticate": value}

    def _authorized(self, request: web.Request, scope: str) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "none":
            return True
        if self.auth == "basic":
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        if not header.startswith("Bearer "):
            return False
        granted = self.issued_tokens.get(header[7:])
        if granted is None:
            return False
        if not scope:
            return True
        _, name, wanted = scope.split(":")
        for item in granted:
            kind, _, rest = item.partition(":")
            repo, _, actions = rest.rpartition(":")
            if kind == "repository" and repo == name and set(wanted.split(",")) <= set(actions.split(",")):
                return True
        return False

    def _deny(self, scope: str) -> web.Response:
        return web.Response(
            status=401, body=errors("UNAUTHORIZED", "authentication required"), headers=self._challenge(scope),
            content_type="application/json",
        )

    async def token(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            form = dict(await request.post())
            self.token_requests.append({"method": "POST", **{k: str(v) for k, v in form.items()}})
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
                return web.Response(status=401, body=errors("UNAUTHORIZED", "invalid refresh token"))
            scopes = str(form.get("scope", "")).split()
        else:
            scopes = request.query.getall("scope", [])
            self.token_requests.append({"method": "GET", "query": list(request.query.items()),
                                        "authorization": request.headers.get("Authorization", "")})
            header = request.headers.get("Authorization", "")
            if header:
                expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
                if header != f"Basic {expected}":
                    return web.json_response({"details": "incorrect username or password"}, status=401)
        token = uuid.uuid4().hex
        self.issued_tokens[token] = set(scopes)
        body: dict[str, Any] = {"token": token, "expires_in": 300}
        if request.query.get("offline_token") == "true" and self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return web.json_response(body)

    # -- API -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/token", self.token)
        app.router.add_route("*", "/v2/", self.ping)
        app.router.add_route("*", "/v2/{tail:.+}", self.dispatch)
        return app

    async def ping(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if not self._authorized(request, ""):
            return self._deny("")
        return web.json_response({}, headers={"Docker-Distribution-API-Version": "registry/2.0"})

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        tail = request.match_info["tail"]
        for kind, pattern in _ROUTES:
            m = pattern.match(tail)
            if m is not None:
                break
        else:
            return web.Response(status=404)
        repo = m.group("repo")
        action = "pull" if request.method in ("GET", "HEAD") else "pull,push"
        scope = f"repository:{repo}:{action}"
        if not self._authorized(request, scope):
            return self._deny(scope)
        if kind == "manifest":
            return await self.manifest(request, repo, m.group("ref"))
        if kind == "upload":
            return await self.upload(request, repo, m.group("id"))
        if kind == "blob":
            if self.blob_delay and request.method == "GET":
                await asyncio.sleep(self.blob_delay)
            return self.blob(request, repo, m.group("digest"))
        return web.json_response({"name": repo, "tags": sorted(self.tags.get(repo, {}))})

    async def manifest(self, request: web.Request, repo: str, ref: str) -> web.Response:
        if request.method == "PUT":
            body = await request.read()
            digest = self.put_manifest(repo, body, request.headers.get("Content-Type", ""),
                                       None if ref.startswith("sha256:") else ref)
            return web.Response(status=201, headers={"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/manifests/{digest}"})
        digest = ref if ref.startswith("sha256:") else self.tags.get(repo, {}).get(ref, "")
        if digest not in self.manifests:
            if request.method == "HEAD":
                return web.Response(status=404)
            return web.Response(status=404, body=errors("MANIFEST_UNKNOWN", "manifest unknown"), content_type="application/json")
        media, body = self.manifests[digest]
        headers = {"Docker-Content-Digest": digest, "Content-Type": media}
        if request.method == "HEAD":
            return web.Response(status=200, headers={**headers, "Content-Length": str(len(body))})
        return web.Response(status=200, body=body, headers=headers)

    def blob(self, request: web.Request, repo: str, digest: str) -> web.Response:
        if digest not in self.repo_blobs.get(repo, set()) or digest not in self.blobs:
            if request.method == "HEAD":
                return web.Response(status=404)
            return web.Response(status=404, body=errors("BLOB_UNKNOWN", "blob unknown to registry"))
        data = self.blobs[digest]
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": str(len(data)), "Docker-Content-Digest": digest})
        return web.Response(status=200, body=data, headers={"Docker-Content-Digest": digest})

    async def upload(self, request: web.Request, repo: str, rest: str) -> web.Response:
        if request.method == "POST" and not rest:
            mount, source = request.query.get("mount"), request.query.get("from")
            if mount and source and mount in self.repo_blobs.get(source, set()):
                self.repo_blobs.setdefault(repo, set()).add(mount)
                return web.Response(status=201, headers={"Location": f"/v2/{repo}/blobs/{mount}", "Docker-Content-Digest": mount})
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = bytearray()
            return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload_id}?_state=s%2Bx"})
        upload_id = rest
        if upload_id not in self.uploads:
            return web.Response(status=404, body=errors("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"))
        if request.query.get("_state") != "s+x":
            return web.Response(status=400, body=errors("BLOB_UPLOAD_INVALID", "state lost"))
        buf = self.uploads[upload_id]
        data = await request.read()
        content_range = request.headers.get("Content-Range")
        if request.method == "PATCH":
            if content_range:
                start = int(content_range.split("-")[0])
                if start != len(buf):
                    return web.Response(status=416)
            buf += data
            return web.Response(status=202, headers={
                "Location": f"/v2/{repo}/blobs/uploads/{upload_id}?_state=s%2Bx", "Range": f"0-{len(buf) - 1}"})
        if request.method == "PUT":
            buf += data
            digest = request.query.get("digest", "")
            if sha256(bytes(buf)) != digest:
                return web.Response(status=400, body=errors("DIGEST_INVALID", "provided digest did not match uploaded content"))
            del self.uploads[upload_id]
            self.put_blob(repo, bytes(buf))
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        return web.Response(status=405)


# ---- building images in the registry -----------------------------------------------------


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def image_config(diff_ids: list[str], arch: str = "amd64", os_name: str = "linux", **extra: Any) -> bytes:
    doc = {
        "architecture": arch,
        "os": os_name,
        "config": {"Cmd": ["sh"], **extra.pop("config", {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "created": "2024-01-01T00:00:00Z",
        **extra,
    }
    return json.dumps(doc).encode()


@dataclass(frozen=True)
class Published:
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]
    manifest: bytes


def publish_image(
    reg: FakeRegistry,
    repo: str,
    tag: str | None,
    layers: list[bytes],
    *,
    compression: str = "gzip",
    oci: bool = False,
    arch: str = "amd64",
    diff_ids: list[str] | None = None,
    config: bytes | None = None,
) -> Published:
    """Put an image (config, compressed layers, manifest) into ``repo``."""
    diff_ids = diff_ids if diff_ids is not None else [sha256(layer) for layer in layers]
    raw = config if config is not None else image_config(diff_ids, arch=arch)
    config_digest = reg.put_blob(repo, raw)
    descs: list[dict[str, Any]] = []
    for layer in layers:
        blob = zst(layer) if compression == "zstd" else gz(layer) if compression == "gzip" else layer
        media = {"zstd": OCI_LAYER_ZSTD, "gzip": OCI_LAYER_GZIP if oci else DOCKER_LAYER_GZIP}.get(
            compression, "application/vnd.oci.image.layer.v1.tar"
        )
        descs.append({"mediaType": media, "size": len(blob), "digest": reg.put_blob(repo, blob)})
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(raw), "digest": config_digest},
        "layers": descs,
    }
    body = json.dumps(doc, indent=3).encode()
    digest = reg.put_manifest(repo, body, media_type, tag)
    return Published(digest, config_digest, [str(d["digest"]) for d in descs], body)


def publish_index(reg: FakeRegistry, repo: str, tag: str, entries: list[tuple[dict[str, str], Published]], oci: bool = True) -> str:
    media = OCI_INDEX if oci else DOCKER_LIST
    doc = {
        "schemaVersion": 2,
        "mediaType": media,
        "manifests": [
            {"mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST, "digest": p.manifest_digest,
             "size": len(p.manifest), "platform": platform}
            for platform, p in entries
        ],
    }
    return reg.put_manifest(repo, json.dumps(doc).encode(), media, tag)
