"""The HTTP contract every route shares: versions, headers, /_ping, 404s, OPTIONS, swarm 503.

Raw HTTP, because the clients hide exactly these details.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from conformance.apiversion import APIVersion, negotiated
from conformance.cli import DockerCLI
from conformance.conftest import Advertised
from conformance.proxy import RecordingProxy
from conformance.rawhttp import RawHTTP, RawResponse, connect_socket
from conformance.spec import SWARM_TAGS, SpecOperation, operations

TOO_OLD = "client version {req} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version"
TOO_NEW = "client version {req} is too new. Maximum supported API version is {max}"
NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)


def assert_common_headers(resp: RawResponse, advertised: Advertised) -> None:
    """What dockerd's middleware puts on every routed response."""
    assert resp.header("Api-Version") == advertised.api_version, resp.describe()
    assert resp.header("Ostype") == "linux", resp.describe()
    server = resp.header("Server") or ""
    assert server.endswith(" (linux)") and "/" in server, server
    assert resp.header("Docker-Experimental") in ("true", "false"), resp.describe()


# --- /_ping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "versioned"])
def test_ping_get(raw: RawHTTP, advertised: Advertised, prefix: str) -> None:
    path = f"/v{advertised.api_version}/_ping" if prefix else "/_ping"
    resp = raw.get(path)
    assert resp.status == 200
    assert resp.body == b"OK"
    assert_common_headers(resp, advertised)
    assert resp.header("Cache-Control") == "no-cache, no-store, must-revalidate"
    assert resp.header("Pragma") == "no-cache"
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    if advertised.max >= APIVersion(1, 42):
        # Swarm status on /_ping arrived with API 1.42; clients treat it as optional before.
        assert resp.header("Swarm") == "inactive", resp.describe()


def test_ping_head(raw: RawHTTP, advertised: Advertised) -> None:
    resp = raw.head("/_ping")
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("Content-Length") == "0"
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    assert_common_headers(resp, advertised)
    assert resp.header("Cache-Control") == "no-cache, no-store, must-revalidate"
    assert resp.header("Pragma") == "no-cache"


def test_ping_builder_version(raw: RawHTTP, engine_kind: str) -> None:
    builder = raw.get("/_ping").header("Builder-Version")
    if engine_kind == "pydockerd":
        # Only the classic builder exists; "2" would send the CLI to BuildKit's /grpc.
        assert builder == "1"
    else:
        assert builder in (None, "1", "2")


def test_pydockerd_advertises_1_50(raw: RawHTTP, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("pydockerd's own advertised range")
    version = raw.get("/version").json()
    assert raw.get("/_ping").header("Api-Version") == "1.50"
    assert (version["ApiVersion"], version["MinAPIVersion"]) == ("1.50", "1.24")


def test_pydockerd_version_identity(raw: RawHTTP, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("pydockerd's own version strings")
    version = raw.get("/version").json()
    assert version["Version"] == "28.2.2"
    assert raw.get("/_ping").header("Server") == "Docker/28.2.2 (linux)"
    names = {c["Name"]: c["Version"] for c in version["Components"]}
    assert names.get("pydockerd") == "0.1.0", version["Components"]


# --- version negotiation and the /vX.Y prefix ---------------------------------------------------


def test_cli_requests_use_negotiated_version(
    docker_binary: str, docker_host: str, advertised: Advertised, cli_max_api: str, tmp_path: Path
) -> None:
    expected = negotiated(advertised.api_version, cli_max_api)
    with RecordingProxy(docker_host, tmp_path / "p.sock") as proxy:
        cli = DockerCLI(docker_binary, proxy.host, tmp_path / "cfg")
        cli.ok("version")
        time.sleep(0.2)
        lines = proxy.request_lines()
    assert lines[0] == "HEAD /_ping", lines
    assert f"GET /v{expected}/version" in lines, lines


def test_sdk_requests_use_advertised_version(docker_host: str, advertised: Advertised, tmp_path: Path) -> None:
    with RecordingProxy(docker_host, tmp_path / "p.sock") as proxy:
        c = docker.APIClient(base_url=proxy.host, version="auto")
        c.info()
        c.close()
        time.sleep(0.2)
        lines = proxy.request_lines()
    assert lines[0] == "GET /version", lines
    assert f"GET /v{advertised.api_version}/info" in lines, lines


def test_versioned_paths_in_range(raw: RawHTTP, advertised: Advertised) -> None:
    for version in {advertised.min, APIVersion(1, 40), advertised.max}:
        if not advertised.min <= version <= advertised.max:
            continue
        resp = raw.get(f"/v{version}/version")
        assert resp.status == 200, (version, resp.describe())
        assert resp.json()["ApiVersion"] == advertised.api_version
        # The header always carries the maximum, whatever the request asked for.
        assert resp.header("Api-Version") == advertised.api_version


def assert_error_for_version(resp: RawResponse, requested: APIVersion, message: str) -> None:
    """dockerd writes errors as JSON, but as plain text (Go's http.Error) to a client that
    asked for an API version below 1.24, which predates JSON errors."""
    if requested < APIVersion(1, 24):
        assert resp.header("Content-Type") == "text/plain; charset=utf-8", resp.describe()
        assert resp.body == (message + "\n").encode(), resp.describe()
    else:
        assert resp.header("Content-Type") == "application/json", resp.describe()
        assert resp.json() == {"message": message}


def test_version_below_minimum_is_400(raw: RawHTTP, advertised: Advertised) -> None:
    below = advertised.min.previous()
    resp = raw.get(f"/v{below}/version")
    assert resp.status == 400, resp.describe()
    assert_error_for_version(resp, below, TOO_OLD.format(req=below, min=advertised.min_api_version))


def test_v1_23_is_too_old_for_pydockerd(raw: RawHTTP, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("reference engines may accept 1.23")
    resp = raw.get("/v1.23/version")
    assert resp.status == 400, resp.describe()
    assert_error_for_version(resp, APIVersion(1, 23), TOO_OLD.format(req="1.23", min="1.24"))


@pytest.mark.parametrize("kind", ["9.99", "next"])
def test_version_above_maximum_is_400(raw: RawHTTP, advertised: Advertised, kind: str) -> None:
    req = "9.99" if kind == "9.99" else str(advertised.max.next())
    for path in (f"/v{req}/version", f"/v{req}/_ping"):
        resp = raw.get(path)
        assert resp.status == 400, resp.describe()
        assert resp.header("Content-Type") == "application/json"
        assert resp.json() == {"message": TOO_NEW.format(req=req, max=advertised.api_version)}


# --- routing errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no-such-endpoint"),
        ("GET", "/v{v}/no-such-endpoint"),
        ("POST", "/version"),
        ("DELETE", "/_ping"),
        ("PUT", "/v{v}/info"),
    ],
)
def test_unknown_path_or_wrong_method_is_404(raw: RawHTTP, advertised: Advertised, method: str, path: str) -> None:
    resp = raw.request(method, path.format(v=advertised.api_version))
    assert resp.status == 404, resp.describe()
    assert resp.header("Content-Type") == "application/json"
    assert resp.json() == {"message": "page not found"}


@pytest.mark.parametrize("path", ["/version", "/containers/json", "/any/route/at/all"])
def test_options_is_200(raw: RawHTTP, path: str) -> None:
    resp = raw.request("OPTIONS", path)
    assert resp.status == 200, resp.describe()


# --- swarm and plugins -----------------------------------------------------------------------------

# Read-only or harmless on a node outside a swarm; never send swarm init/join to an engine.
SWARM_REQUESTS = [
    ("GET", "/swarm"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"),
    ("POST", "/swarm/update?version=1"),
    ("GET", "/nodes"),
    ("GET", "/nodes/nosuchnode"),
    ("DELETE", "/nodes/nosuchnode"),
    ("GET", "/services"),
    ("GET", "/services/nosuchservice"),
    ("POST", "/services/create"),
    ("GET", "/tasks"),
    ("GET", "/tasks/nosuchtask"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/configs"),
    ("GET", "/configs/nosuchconfig"),
]


@pytest.mark.parametrize(("method", "path"), SWARM_REQUESTS)
def test_swarm_family_is_503(raw: RawHTTP, advertised: Advertised, method: str, path: str) -> None:
    body: dict[str, object] | None = {} if method == "POST" else None
    resp = raw.request(method, path, json_body=body)
    assert resp.status == 503, resp.describe()
    assert resp.json() == {"message": NOT_A_MANAGER}
    assert_common_headers(resp, advertised)


def _swarm_operations() -> list[SpecOperation]:
    return [op for op in operations() if op.tag in SWARM_TAGS]


@pytest.mark.parametrize("op", _swarm_operations(), ids=lambda op: op.operation_id)
def test_every_swarm_operation_is_503_on_pydockerd(raw: RawHTTP, engine_kind: str, op: SpecOperation) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("would init/join a swarm on a real engine")
    path = op.path.replace("{id}", "nosuchobject").replace("{name}", "nosuchobject")
    if path.endswith("/logs"):
        path += "?stdout=1"
    if path.endswith("/update"):
        path += "?version=1"
    resp = raw.request(op.method, path, json_body={} if op.method == "POST" else None)
    assert resp.status == 503, resp.describe()
    expected = "This node is not part of a swarm" if op.operation_id == "SwarmLeave" else NOT_A_MANAGER
    assert resp.json() == {"message": expected}


def test_swarm_leave_outside_a_swarm(raw: RawHTTP) -> None:
    resp = raw.post("/swarm/leave")
    assert resp.status == 503, resp.describe()
    assert resp.json() == {"message": "This node is not part of a swarm"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("node", "ls"), NOT_A_MANAGER),
        (("service", "ls"), NOT_A_MANAGER),
        (("secret", "ls"), NOT_A_MANAGER),
        (("swarm", "leave"), "This node is not part of a swarm"),
    ],
)
def test_swarm_cli_shows_daemon_message(docker_cli: DockerCLI, args: tuple[str, ...], message: str) -> None:
    proc = docker_cli(*args)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error response from daemon: {message}"


def test_plugins_list(raw: RawHTTP, engine_kind: str) -> None:
    resp = raw.get("/plugins")
    assert resp.status == 200, resp.describe()
    assert resp.header("Content-Type") == "application/json"
    plugins = resp.json()
    assert isinstance(plugins, list)
    if engine_kind == "pydockerd":
        assert plugins == []


def test_plugin_ls_cli(docker_cli: DockerCLI) -> None:
    out = docker_cli.ok("plugin", "ls")
    assert out.split()[:4] == ["ID", "NAME", "DESCRIPTION", "ENABLED"]


def test_malformed_version_prefix_is_404(raw: RawHTTP) -> None:
    resp = raw.get("/vfoo/version")
    assert resp.status == 404, resp.describe()
    assert resp.json() == {"message": "page not found"}


def test_raw_socket_http10_keepalive_not_required(docker_host: str) -> None:
    # An HTTP/1.0 request without Host must still be served (curl -0, old proxies).
    sock = connect_socket(docker_host, timeout=10)
    try:
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]
    assert data.endswith(b"\r\n\r\nOK")
