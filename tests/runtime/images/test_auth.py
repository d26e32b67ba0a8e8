"""Registry credentials, WWW-Authenticate parsing and the token flow."""

from __future__ import annotations

import base64
import json

import pytest

from runtime.images.auth import (
    AuthConfig,
    Authenticator,
    AuthError,
    Challenge,
    decode_registry_auth,
    parse_challenges,
    registry_error_text,
)


def b64url(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_decode_registry_auth_variants() -> None:
    assert decode_registry_auth("") == AuthConfig()
    assert decode_registry_auth("e30=") == AuthConfig()  # what the CLI sends without a login
    doc = {"username": "u", "password": "p?>", "serveraddress": "reg:5000", "identitytoken": "t", "unknown": 1}
    assert decode_registry_auth(b64url(doc)) == AuthConfig(
        username="u", password="p?>", server_address="reg:5000", identity_token="t"
    )
    # unpadded, standard alphabet and Go-style capitalised keys are accepted too
    std = base64.b64encode(json.dumps({"Username": "u", "Password": "p?>"}).encode()).decode().rstrip("=")
    assert decode_registry_auth(std).credentials() == ("u", "p?>")
    assert decode_registry_auth("!!not base64!!") == AuthConfig()
    assert decode_registry_auth(b64url(["a", "list"])) == AuthConfig()


def test_decode_what_the_cli_sends() -> None:
    header = base64.urlsafe_b64encode(json.dumps(
        {"username": "a", "password": "b", "registrytoken": "r"}).encode()).decode()
    assert decode_registry_auth(header) == AuthConfig(username="a", password="b",
                                                      registry_token="r")


def test_credentials_from_auth_field() -> None:
    assert AuthConfig(auth=base64.b64encode(b"alice:pa:ss").decode()).credentials() == ("alice", "pa:ss")
    assert AuthConfig(auth="bm9jb2xvbg==").credentials() is None  # "nocolon"


def test_parse_challenges() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'
    assert parse_challenges([header]) == [
        Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                             "scope": "repository:a/b:pull"}),  # fmt: skip
    ]
    two = 'Basic realm="basic-realm", Bearer realm="https://t/x", error="insufficient_scope"'
    assert [c.scheme for c in parse_challenges([two])] == ["basic", "bearer"]
    assert parse_challenges([two])[1].params["error"] == "insufficient_scope"
    assert parse_challenges(['Basic realm="quote \\" inside"'])[0].realm == 'quote " inside'
    assert parse_challenges(["Bearer realm=unquoted,service=svc"])[0].params == {"realm": "unquoted", "service": "svc"}
    assert parse_challenges(["", "  "]) == []


def test_registry_error_text() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {}}]}).encode()
    assert registry_error_text(404, body) == "manifest unknown: manifest unknown"
    assert registry_error_text(401, json.dumps({"details": "incorrect username or password"}).encode()) == (
        "unauthorized: incorrect username or password"
    )
    assert registry_error_text(401, b"") == "unauthorized: authentication required"
    assert registry_error_text(502, b"<html>") == "unexpected status code 502"


class FakeTokens:
    def __init__(self, status: int = 200, body: object = None) -> None:
        self.status = status
        self.body = body if body is not None else {"token": "T", "expires_in": 300}
        self.calls: list[tuple[str, str, list[tuple[str, str]], tuple[str, str] | None]] = []

    async def fetch_token(
        self, method: str, url: str, params: list[tuple[str, str]], basic: tuple[str, str] | None
    ) -> tuple[int, bytes]:
        self.calls.append((method, url, params, basic))
        return self.status, json.dumps(self.body).encode()


async def test_bearer_tokens_are_cached_per_scope() -> None:
    tokens = FakeTokens()
    auth = Authenticator(AuthConfig(username="u", password="p"), tokens)
    auth.update([Challenge("bearer", {"realm": "https://auth.example/token", "service": "svc"})])
    assert await auth.header(("repository:a:pull",)) == "Bearer T"
    assert await auth.header(("repository:a:pull",)) == "Bearer T"
    assert len(tokens.calls) == 1
    await auth.header(("repository:a:pull,push",))
    assert len(tokens.calls) == 2
    method, url, params, basic = tokens.calls[0]
    assert (method, url, basic) == ("GET", "https://auth.example/token", ("u", "p"))
    assert params == [("service", "svc"), ("scope", "repository:a:pull"), ("account", "u")]


async def test_token_errors() -> None:
    bad_realm = Authenticator(AuthConfig(), FakeTokens())
    bad_realm.update([Challenge("bearer", {"realm": "/relative"})])
    with pytest.raises(AuthError, match="invalid token auth challenge realm"):
        await bad_realm.header(())
    refused = Authenticator(AuthConfig(), FakeTokens(401, {"details": "incorrect username or password"}))
    refused.update([Challenge("bearer", {"realm": "https://a/t"})])
    with pytest.raises(AuthError, match="^unauthorized: incorrect username or password$"):
        await refused.header(())
    empty = Authenticator(AuthConfig(), FakeTokens(200, {"nothing": True}))
    empty.update([Challenge("bearer", {"realm": "https://a/t"})])
    with pytest.raises(AuthError, match="did not include a token"):
        await empty.header(())


async def test_offline_login_keeps_the_refresh_token() -> None:
    tokens = FakeTokens(200, {"access_token": "A", "refresh_token": "R"})
    auth = Authenticator(AuthConfig(username="u", password="p"), tokens, offline_token=True)
    auth.update([Challenge("bearer", {"realm": "https://a/t", "service": "s"})])
    assert await auth.header(()) == "Bearer A"
    assert auth.refresh_token == "R"
    assert ("offline_token", "true") in tokens.calls[0][2] and ("client_id", "docker") in tokens.calls[0][2]


async def test_basic_and_none() -> None:
    none = Authenticator(AuthConfig(), FakeTokens())
    assert await none.header(("x",)) is None
    basic = Authenticator(AuthConfig(username="u", password="p"), FakeTokens())
    basic.update([Challenge("basic", {"realm": "r"})])
    assert await basic.header(()) == "Basic " + base64.b64encode(b"u:p").decode()
    anonymous = Authenticator(AuthConfig(), FakeTokens())
    anonymous.update([Challenge("basic", {"realm": "r"})])
    with pytest.raises(AuthError, match="^no basic auth credentials$"):
        await anonymous.header(())
