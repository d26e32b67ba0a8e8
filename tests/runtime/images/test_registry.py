"""Registry options (insecure registries, mirrors, endpoints), login and transport errors."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from runtime.errors import InvalidParameter
from runtime.images.auth import AuthConfig, AuthError
from runtime.images.endpoints import Endpoint, RegistryOptions, index_name
from runtime.images.registry import TransportError, login, new_session
from tests.runtime.images.fakeregistry import FakeRegistry


def test_loopback_registries_are_insecure_by_default() -> None:
    options = RegistryOptions()
    for host in ("127.0.0.1:5000", "127.3.2.1", "localhost:5000", "[::1]:5000"):
        assert options.is_insecure(host), host
        assert not options.needs_lookup(host), host
    assert options.endpoints("127.0.0.1:5000", mirrors=True) == [
        Endpoint("https://127.0.0.1:5000", verify_tls=False),
        Endpoint("http://127.0.0.1:5000", verify_tls=False),
    ]


def test_secure_registry_gets_https_only() -> None:
    options = RegistryOptions()
    assert not options.is_insecure("192.0.2.10:5000")  # an IP literal: no lookup needed
    assert options.endpoints("192.0.2.10:5000", mirrors=False) == [Endpoint("https://192.0.2.10:5000")]


def test_configured_insecure_names_and_cidrs() -> None:
    options = RegistryOptions(insecure=("registry.internal:5000", "192.0.2.0/24"))
    assert options.is_insecure("registry.internal:5000") and not options.needs_lookup("registry.internal:5000")
    assert options.is_insecure("192.0.2.77")
    assert not options.is_insecure("198.51.100.1:443")
    assert "192.0.2.0/24" in options.insecure_cidrs and "127.0.0.0/8" in options.insecure_cidrs


def test_docker_hub_endpoints_with_mirrors() -> None:
    options = RegistryOptions(mirrors=("http://127.0.0.1:5001/", "https://mirror.example"))
    endpoints = options.endpoints("docker.io", mirrors=True)
    assert endpoints[0] == Endpoint("http://127.0.0.1:5001", mirror=True, verify_tls=False)
    assert endpoints[-1] == Endpoint("https://registry-1.docker.io")
    assert options.endpoints("docker.io", mirrors=False) == [Endpoint("https://registry-1.docker.io")]


def test_invalid_options() -> None:
    with pytest.raises(InvalidParameter):
        RegistryOptions(mirrors=("mirror.example",))
    with pytest.raises(InvalidParameter):
        RegistryOptions(mirrors=("https://mirror.example/path",))
    with pytest.raises(InvalidParameter):
        RegistryOptions(insecure=("https://x",))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
        ("https://reg.example/v2/", "reg.example"),
    ],
)
def test_index_name(address: str, expected: str) -> None:
    assert index_name(address) == expected


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeRegistry:
    registry = FakeRegistry()
    server = await aiohttp_server(registry.app())
    registry.base = f"http://127.0.0.1:{server.port}"
    return registry


async def _login(auth: AuthConfig) -> str:
    async with new_session() as session:
        return await login(session, RegistryOptions(), auth, "test")


async def test_login_basic(fake: FakeRegistry) -> None:
    fake.auth = "basic"
    server = fake.base.removeprefix("http://")
    assert await _login(AuthConfig(username="alice", password="secret", server_address=server)) == ""
    with pytest.raises(AuthError) as info:
        await _login(AuthConfig(username="alice", password="nope", server_address=fake.base))
    assert str(info.value) == f"login attempt to {fake.base}/v2/ failed with status: 401 Unauthorized"


async def test_login_bearer_returns_identity_token(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.refresh_token = "refresh-xyz"
    server = fake.base.removeprefix("http://")
    assert await _login(AuthConfig(username="alice", password="secret", server_address=server)) == "refresh-xyz"
    with pytest.raises(AuthError, match="unauthorized: incorrect username or password"):
        await _login(AuthConfig(username="alice", password="bad", server_address=server))


async def test_login_to_open_registry(fake: FakeRegistry) -> None:
    assert await _login(AuthConfig(username="x", password="y", server_address=fake.base)) == ""


async def test_connection_refused_reads_like_go() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as info:
        await _login(AuthConfig(username="x", password="y", server_address=f"127.0.0.1:{port}"))
    # https is tried first for an insecure registry; the last endpoint's error is reported
    assert str(info.value) == f'Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: connection refused'


async def test_credentials_never_leave_the_registry_host(fake: FakeRegistry, aiohttp_server: Any) -> None:
    from aiohttp import web

    from runtime.images.reference import parse_normalized_named
    from runtime.images.endpoints import Endpoint
    from runtime.images.registry import open_repository

    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/elsewhere", record)
    other = await aiohttp_server(app)
    fake.auth = "basic"
    ref = parse_normalized_named(f"{fake.base.removeprefix('http://')}/repo")
    async with new_session() as session:
        repo = await open_repository(session, Endpoint(fake.base), ref, AuthConfig(username="alice", password="secret"),
                                     ("pull",), "test")  # fmt: skip
        (await repo.send("GET", f"http://127.0.0.1:{other.port}/elsewhere")).release()
        own = await repo.send("GET", f"{fake.base}/v2/")
        own.release()
    assert seen == [None]
    assert own.status == 200  # the registry itself did get the credentials
