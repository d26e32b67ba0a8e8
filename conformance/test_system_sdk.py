"""System calls through docker-py: ping, version, info, df, events, plugins."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote

import docker
import pytest

from conformance.conftest import Advertised
from conformance.rawhttp import RawHTTP, connect_socket
from conformance.tracker import ResourceTracker


def test_ping(client: docker.DockerClient) -> None:
    assert client.ping() is True


def test_version(client: docker.DockerClient, advertised: Advertised) -> None:
    version = client.version()
    assert version["ApiVersion"] == advertised.api_version
    assert version["MinAPIVersion"] == advertised.min_api_version
    assert version["Os"] == "linux"
    for key in ("Version", "Arch", "KernelVersion", "GoVersion"):
        assert isinstance(version.get(key), str), key
    # dockerd omits an empty BuildTime or GitCommit (a binary built without them; pydockerd
    # has no build, and no commit when it does not run from a git checkout)
    for key in ("BuildTime", "GitCommit"):
        assert isinstance(version.get(key, ""), str), key


def test_client_uses_the_advertised_version(api_client: docker.APIClient, advertised: Advertised) -> None:
    # docker-py takes ApiVersion from the unversioned GET /version as is (no cap).
    assert api_client.api_version == advertised.api_version


def test_info(client: docker.DockerClient) -> None:
    info = client.info()
    for key in ("ID", "Name", "ServerVersion", "OperatingSystem", "KernelVersion", "Driver", "DockerRootDir"):
        assert isinstance(info[key], str) and info[key], key
    assert info["NCPU"] >= 1
    assert info["MemTotal"] > 0
    assert isinstance(info["SecurityOptions"], list)
    assert info["DefaultRuntime"] in info["Runtimes"], (info["DefaultRuntime"], info["Runtimes"])
    assert info["Swarm"]["LocalNodeState"] == "inactive"


def test_df(client: docker.DockerClient) -> None:
    df = client.df()
    assert isinstance(df["LayersSize"], int)
    for key in ("Images", "Containers", "Volumes"):
        assert isinstance(df[key], list), key
    assert df.get("BuildCache") is None or isinstance(df["BuildCache"], list)


def test_events_since_until(client: docker.DockerClient, raw: RawHTTP, tracker: ResourceTracker) -> None:
    name = f"conf-sdk-events-{uuid.uuid4().hex[:12]}"
    resp = raw.post("/volumes/create", json_body={"Name": name})
    created = resp.status == 201
    if created:
        tracker.volume(name)
    else:
        assert resp.status in (404, 501), resp.describe()
    until = int(time.time()) + 1
    time.sleep(1.1)
    events = list(client.events(since=0, until=until, decode=True))
    assert all(e["time"] <= until for e in events)
    if created:
        assert any(e["Type"] == "volume" and e["Actor"]["ID"] == name and e["Action"] == "create" for e in events)


def test_plugins_list_is_empty(client: docker.DockerClient, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("a reference engine may have plugins installed")
    assert client.plugins.list() == []


def test_events_since_after_until_is_400(raw: RawHTTP) -> None:
    now = int(time.time())
    resp = raw.get(f"/events?since={now + 100}&until={now}")
    assert resp.status == 400, resp.describe()
    assert resp.json() == {"message": f"`since` time ({now + 100}) cannot be after `until` time ({now})"}


def test_events_stream_sends_headers_at_once(docker_host: str) -> None:
    # With no until the stream stays open; the status line and headers must arrive before any
    # event does, or clients (docker events, docker-py) sit waiting for the response.
    sock = connect_socket(docker_host, timeout=5)
    try:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed before headers: {head!r}"
            head += chunk
    finally:
        sock.close()
    status, _, rest = head.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 200"), head
    assert b"content-type: application/json" in rest.lower(), head


@pytest.mark.parametrize(
    "filters",
    ['{"type":{"volume":true}}', '{"type":["volume"]}'],
    ids=["map-of-sets (Go client)", "list (docker-py)"],
)
def test_events_accepts_both_filter_encodings(raw: RawHTTP, filters: str) -> None:
    until = int(time.time())
    resp = raw.get(f"/events?since=0&until={until}&filters={quote(filters)}")
    assert resp.status == 200, resp.describe()
    events = [json.loads(line) for line in resp.body.splitlines() if line.strip()]
    assert all(e["Type"] == "volume" for e in events), events[:3]


def test_events_malformed_filters_is_400(raw: RawHTTP, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("dockerd 20.10 answers 500 here; later releases and pydockerd say 400")
    resp = raw.get(f"/events?until={int(time.time())}&filters=notjson")
    assert resp.status == 400, resp.describe()
    assert resp.json()["message"]
