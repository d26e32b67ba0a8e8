"""Access control of the dashboard: token, session cookie, CSRF, same origin, headers."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from dashboard.security import COOKIE, CSRF_HEADER
from tests.dashboard.conftest import FakeEngine, login

Client = TestClient[web.Request, web.Application]


async def test_api_without_token_is_401(client: Client, fake_engine: FakeEngine) -> None:
    for method, path in (("GET", "/api/containers"), ("POST", "/api/containers/c1/stop"), ("GET", "/api/session")):
        resp = await client.request(method, path)
        assert resp.status == 401, path
        assert "authentication required" in (await resp.json())["message"]
    assert fake_engine.calls == []


async def test_wrong_token_is_401_and_sets_no_cookie(client: Client) -> None:
    resp = await client.post("/api/login", json={"token": "not-the-token"})
    assert resp.status == 401
    assert COOKIE not in resp.cookies
    assert (await client.get("/api/containers")).status == 401


async def test_forged_session_cookie_is_401(client: Client) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: "made-up"})
    assert (await client.get("/api/containers")).status == 401


async def test_login_sets_an_httponly_strict_cookie(client: Client, fake_engine: FakeEngine) -> None:
    resp = await client.post("/api/login", json={"token": "test-token-0123456789"})
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    listing = await client.get("/api/containers")
    assert listing.status == 200
    assert (await listing.json())[0]["Names"] == ["/web"]
    assert fake_engine.calls == [("GET", "/containers/json?all=1&size=0")]


async def test_state_change_without_csrf_is_403(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers/c1/stop")
    assert resp.status == 403
    assert "CSRF" in (await resp.json())["message"]
    resp = await client.post("/api/containers/c1/stop", headers={CSRF_HEADER: "wrong"})
    assert resp.status == 403
    resp = await client.delete("/api/containers/c1", headers={CSRF_HEADER: csrf + "x"})
    assert resp.status == 403
    assert fake_engine.calls == []
    resp = await client.post("/api/containers/c1/stop", headers={CSRF_HEADER: csrf})
    assert resp.status == 200
    assert fake_engine.calls == [("POST", "/containers/c1/stop")]


async def test_cross_origin_state_change_is_refused(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers/c1/stop",
                             headers={CSRF_HEADER: csrf, "Origin": "http://evil.example"})
    assert resp.status == 403
    assert fake_engine.calls == []


async def test_exec_websocket_needs_the_csrf_token(client: Client, fake_engine: FakeEngine) -> None:
    await login(client)
    resp = await client.get("/api/ws/containers/c1/exec", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403
    assert fake_engine.calls == []


async def test_strict_csp_and_no_cors(client: Client) -> None:
    for path in ("/", "/api/containers", "/static/js/main.js"):
        resp = await client.get(path, headers={"Origin": "http://evil.example"})
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe-eval" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    preflight = await client.options("/api/containers", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status in (401, 403, 405)
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_loopback_listener_refuses_other_host_names(client: Client) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 gets nothing."""
    resp = await client.get("/", headers={"Host": "evil.example:2380"})
    assert resp.status == 421


async def test_logout_ends_the_session(client: Client) -> None:
    csrf = await login(client)
    assert (await client.post("/api/logout", headers={CSRF_HEADER: csrf})).status == 200
    assert (await client.get("/api/containers")).status == 401


async def test_index_has_no_inline_script(client: Client) -> None:
    await login(client)
    html = await (await client.get("/")).text()
    assert '<script type="module" src="/static/js/boot.js"></script>' in html
    assert html.count("<script") == 1
