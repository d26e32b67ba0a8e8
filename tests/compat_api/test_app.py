"""The API core: version prefix and range, common headers, error rendering, OPTIONS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.params import api_version, json_body
from compat_api.render import json_response
from compat_api.routers import Route
from runtime import errors
from runtime.engine import Engine


async def _echo_version(request: web.Request) -> web.Response:
    return json_response({"version": str(api_version(request))})


async def _raise(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    exc: Exception = {
        "notfound": errors.ImageNotFound("busybox:latest"),
        "invalid": errors.InvalidParameter("bad value"),
        "conflict": errors.Conflict("in use"),
        "forbidden": errors.Forbidden("nope"),
        "unavailable": errors.NoSwarm(),
        "notimpl": errors.NotImplementedFeature("later"),
        "unauth": errors.Unauthorized("who"),
        "bug": RuntimeError("boom"),
    }[kind]
    raise exc


async def _not_modified(request: web.Request) -> web.Response:
    raise errors.NotModified("already started")


async def _body(request: web.Request) -> web.Response:
    return json_response(await json_body(request))


TEST_ROUTES = [
    Route("GET", "/echo", _echo_version),
    Route("GET", "/raise/{kind}", _raise),
    Route("POST", "/start", _not_modified),
    Route("POST", "/body", _body),
]


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine) -> TestClient:
    return await aiohttp_client(create_app(engine, TEST_ROUTES))


async def test_unversioned_path_gets_max_version(client: TestClient) -> None:
    resp = await client.get("/echo")
    assert resp.status == 200
    assert await resp.json() == {"version": "1.50"}


async def test_versioned_path_passes_version(client: TestClient) -> None:
    resp = await client.get("/v1.41/echo")
    assert await resp.json() == {"version": "1.41"}


async def test_version_too_new_is_json_400(client: TestClient) -> None:
    resp = await client.get("/v9.99/echo")
    assert resp.status == 400
    assert await resp.json() == {
        "message": "client version 9.99 is too new. Maximum supported API version is 1.50"
    }


async def test_version_too_old_is_plain_text_400(client: TestClient) -> None:
    resp = await client.get("/v1.23/echo")
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await resp.text() == (
        "client version 1.23 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version\n"
    )


async def test_common_headers_on_every_response(client: TestClient) -> None:
    for path in ("/echo", "/nowhere"):
        resp = await client.get(path)
        assert resp.headers["Api-Version"] == "1.50"
        assert resp.headers["Ostype"] == "linux"
        assert resp.headers["Server"] == "Docker/28.2.2 (linux)"
        assert resp.headers["Docker-Experimental"] == "false"


async def test_unknown_path_and_wrong_method_are_page_not_found(client: TestClient) -> None:
    for method, path in (("GET", "/nowhere"), ("DELETE", "/echo"), ("GET", "/v1.44/nowhere")):
        resp = await client.request(method, path)
        assert resp.status == 404
        assert await resp.json() == {"message": "page not found"}


async def test_options_answers_200(client: TestClient) -> None:
    resp = await client.options("/v1.50/containers/json")
    assert resp.status == 200


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("notfound", 404, "No such image: busybox:latest"),
        ("invalid", 400, "bad value"),
        ("conflict", 409, "in use"),
        ("forbidden", 403, "nope"),
        ("unavailable", 503, 'This node is not a swarm manager. Use "docker swarm init" or '
                             '"docker swarm join" to connect this node to swarm and try again.'),
        ("notimpl", 501, "later"),
        ("unauth", 401, "who"),
        ("bug", 500, "boom"),
    ],
)
async def test_error_categories_map_to_status(client: TestClient, kind: str, status: int, message: str) -> None:
    resp = await client.get(f"/raise/{kind}")
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == {"message": message}


async def test_not_modified_has_no_body(client: TestClient) -> None:
    resp = await client.post("/start")
    assert resp.status == 304
    assert await resp.read() == b""


async def test_json_body_with_trailing_newline(client: TestClient) -> None:
    resp = await client.post("/body", data=b'{"a": 1}\n', headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert await resp.json() == {"a": 1}


async def test_empty_body_with_text_plain_is_accepted(client: TestClient) -> None:
    resp = await client.post("/body", data=b"", headers={"Content-Type": "text/plain"})
    assert resp.status == 200
    assert await resp.json() == {}


async def test_malformed_json_is_400_not_500(client: TestClient) -> None:
    resp = await client.post("/body", data=b'{"a": ', headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["message"].startswith("invalid JSON")


async def test_json_body_needs_json_content_type(client: TestClient) -> None:
    resp = await client.post("/body", data=b'{"a": 1}', headers={"Content-Type": "text/plain"})
    assert resp.status == 400
    assert "must be 'application/json'" in (await resp.json())["message"]


async def test_chunked_json_body(client: TestClient) -> None:
    async def chunks() -> Any:
        yield b'{"Image":'
        yield b' "busybox"}\n'

    resp = await client.post("/body", data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert await resp.json() == {"Image": "busybox"}


async def test_error_body_ends_with_newline(client: TestClient) -> None:
    resp = await client.get("/raise/invalid")
    raw = await resp.read()
    assert raw.endswith(b"\n")
    assert json.loads(raw) == {"message": "bad value"}
