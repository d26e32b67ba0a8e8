"""A private Docker registry (Debian's ``docker-registry``, distribution 2.8) for push/pull tests.

:class:`LocalRegistry` starts one on ``127.0.0.1:<free port>`` with its own config file and
storage directory under a temporary directory, optionally with htpasswd basic auth, and stops
it again. Engines treat 127.0.0.0/8 registries as insecure (plain HTTP) by default, so no TLS
is needed. Nothing here ever listens on or talks to anything but the loopback address.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_BINARY = os.environ.get("CONFORMANCE_REGISTRY", "/usr/bin/docker-registry")


class RegistryStartError(RuntimeError):
    pass


def find_registry() -> str | None:
    return REGISTRY_BINARY if Path(REGISTRY_BINARY).is_file() else shutil.which("docker-registry")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """``user:<bcrypt hash>`` as ``htpasswd -B`` writes it (distribution accepts only bcrypt)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # glibc/libxcrypt provides bcrypt ($2b$)

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
    if not hashed or not hashed.startswith("$2"):
        raise RegistryStartError("this libc's crypt() cannot make bcrypt hashes")
    return f"{user}:{hashed}\n"


def _config(root: Path, port: int, htpasswd: Path | None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: conformance-realm", f"    path: {htpasswd}"]
    return "\n".join(lines) + "\n"


@dataclass
class LocalRegistry:
    """One ``docker-registry`` process; use :meth:`start` / :meth:`stop` (or ``with``)."""

    user: str | None = None
    password: str | None = None
    binary: str = REGISTRY_BINARY
    start_timeout: float = 15.0

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="conf-registry-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: the registry part of image names."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def auth_required(self) -> bool:
        return self.user is not None

    def start(self) -> LocalRegistry:
        htpasswd = None
        if self.user is not None:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(htpasswd_line(self.user, self.password or ""))
        for _attempt in range(3):  # the free port can be taken between probe and bind
            self.port = free_port()
            config = self.root / "config.yml"
            config.write_text(_config(self.root, self.port, htpasswd))
            log = open(self.root / "registry.log", "ab")
            self._proc = subprocess.Popen(
                [self.binary, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log.close()
            if self._wait_ready():
                return self
            self._terminate()
        raise RegistryStartError(f"docker-registry did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                    return True
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.root / "registry.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _terminate(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- direct registry API (what the registry holds, independent of any engine) -------------

    def _request(self, method: str, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"{self.url}{path}", method=method)
        if accept:
            req.add_header("Accept", accept)
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def manifest(self, repo: str, ref: str) -> tuple[str, dict]:  # type: ignore[type-arg]
        """``(Docker-Content-Digest, manifest)`` of ``repo:ref`` as the registry stores it."""
        accept = ",".join([
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
        ])
        status, headers, body = self._request("GET", f"/v2/{repo}/manifests/{ref}", accept)
        if status != 200:
            raise LookupError(f"manifest {repo}:{ref}: HTTP {status} {body[:200]!r}")
        return headers.get("Docker-Content-Digest", ""), json.loads(body)

    def tags(self, repo: str) -> list[str]:
        status, _, body = self._request("GET", f"/v2/{repo}/tags/list")
        if status != 200:
            return []
        return list(json.loads(body).get("tags") or [])

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self._request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200


# ---- pytest fixtures (import them into a test module to use them) ---------------------------

AUTH_USER = "conformance"
AUTH_PASSWORD = "s3cret-pw"

import pytest


@pytest.fixture(scope="session")
def registry() -> Iterator[LocalRegistry]:
    """A registry without authentication on 127.0.0.1 (plain HTTP)."""
    if find_registry() is None:
        pytest.skip("docker-registry is not installed (scripts/install-deps.sh installs it)")
    reg = LocalRegistry(binary=find_registry() or REGISTRY_BINARY)
    try:
        reg.start()
    except RegistryStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[LocalRegistry]:
    """A registry with htpasswd basic auth (``AUTH_USER`` / ``AUTH_PASSWORD``)."""
    if find_registry() is None:
        pytest.skip("docker-registry is not installed (scripts/install-deps.sh installs it)")
    reg = LocalRegistry(user=AUTH_USER, password=AUTH_PASSWORD, binary=find_registry() or REGISTRY_BINARY)
    try:
        reg.start()
    except RegistryStartError as exc:
        pytest.skip(f"cannot run an htpasswd registry here: {exc}")
    yield reg
    reg.stop()


def remove_repository(api: Any, repo: str) -> None:
    """Remove every tag and digest reference of ``repo`` from an engine (docker-py
    APIClient), never the images themselves by ID: an image shared with other names (busybox)
    keeps them. Best effort."""
    try:
        images = api.images(name=repo, all=True)
    except Exception:
        return
    for image in images:
        for ref in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]:
            if ref.startswith((f"{repo}:", f"{repo}@")):
                try:
                    api.remove_image(ref)
                except Exception:
                    pass
