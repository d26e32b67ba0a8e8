from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from aiohttp.test_utils import TestClient

from compat_api.streams.stdcopy import FrameDecoder
from tests.spec import load_spec

CREATE = {"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2"],
          "HostConfig": {"LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
                         "Dns": [], "PortBindings": {}, "BlkioWeightDevice": []},
          "NetworkingConfig": {"EndpointsConfig": {"default": {}}}, "Labels": {"k": "v"}}


async def create(client: TestClient, body: dict[str, Any] | None = None, name: str = "") -> str:
    resp = await client.post(f"/v1.50/containers/create{'?name=' + name if name else ''}",
                             json=body or CREATE)
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    assert data["Warnings"] == []
    return str(data["Id"])


async def test_create_inspect_shape(client: TestClient) -> None:
    cid = await create(client, name="shape")
    resp = await client.get("/v1.50/containers/shape/json")
    assert resp.status == 200
    body = await resp.json()
    spec = load_spec()["definitions"]
    assert set(spec["ContainerInspectResponse"]["properties"]) - set(body) <= {
        "ImageManifestDescriptor", "SizeRw", "SizeRootFs"}
    assert body["Id"] == cid and body["Name"] == "/shape"
    assert body["State"]["Status"] == "created" and body["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    assert body["Config"]["Cmd"] == ["sh", "-c", "echo out; echo err >&2"]
    assert body["Config"]["Labels"] == {"k": "v"} and body["Config"]["Image"] == "busybox"
    assert "ExposedPorts" not in body["Config"] and body["Config"]["Entrypoint"] is None
    hc = body["HostConfig"]
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["Dns"] == [] and hc["PortBindings"] == {} and hc["BlkioWeightDevice"] == []
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["UTSMode"] == "" and "ContainerIDFile" in hc and "IOMaximumIOps" in hc
    assert body["Mounts"] == [] and body["ExecIDs"] is None
    assert body["LogPath"].endswith(f"{cid}-json.log")
    assert body["NetworkSettings"]["Networks"].keys() == {"bridge"}
    assert hc["NetworkMode"] == "default"


async def test_create_errors(client: TestClient) -> None:
    resp = await client.post("/v1.50/containers/create", json={"Image": "nosuch"})
    assert resp.status == 404
    assert (await resp.json())["message"] == "No such image: nosuch:latest"
    await create(client, name="taken")
    resp = await client.post("/v1.50/containers/create?name=taken", json=CREATE)
    assert resp.status == 409 and "is already in use by container" in (await resp.json())["message"]
    resp = await client.post("/v1.50/containers/create?name=a", json=CREATE)
    assert resp.status == 400
    resp = await client.post("/v1.50/containers/create", json={"Image": "busybox", "Tty": "yes"})
    assert resp.status == 400
    resp = await client.get("/v1.50/containers/nosuch/json")
    assert resp.status == 404 and (await resp.json())["message"] == "No such container: nosuch"


async def test_run_flow_wait_before_start_and_logs(client: TestClient) -> None:
    cid = await create(client)
    wait = await client.post(f"/v1.50/containers/{cid}/wait?condition=next-exit")
    # the headers arrive before the container is even started
    assert wait.status == 200 and wait.headers["Content-Type"] == "application/json"
    resp = await client.post(f"/v1.50/containers/{cid}/start")
    assert resp.status == 204
    body = json.loads(await asyncio.wait_for(wait.read(), 10))
    assert body == {"StatusCode": 0, "Error": None}
    resp = await client.post(f"/v1.50/containers/{cid}/start")
    assert resp.status == 204  # exited containers start again
    await asyncio.sleep(0.3)
    logs = await client.get(f"/v1.50/containers/{cid}/logs?stdout=1&stderr=1&timestamps=1")
    assert logs.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert logs.headers.get("Transfer-Encoding") == "chunked"
    frames = FrameDecoder().feed(await logs.read())
    assert sorted((int(f.stream), f.payload.split(b" ", 1)[1]) for f in frames) == [
        (1, b"out\n"), (1, b"out\n"), (2, b"err\n"), (2, b"err\n")]
    stamp = frames[0].payload.split(b" ", 1)[0].decode()
    assert len(stamp) == 30 and stamp.endswith("Z")
    # like dockerd, tail counts lines of both streams before the stream filter applies
    tail = await client.get(f"/v1.50/containers/{cid}/logs?stdout=1&stderr=1&tail=2")
    assert sorted(f.payload for f in FrameDecoder().feed(await tail.read())) == [b"err\n", b"out\n"]
    old = await client.get(f"/v1.41/containers/{cid}/logs?stdout=1")
    assert old.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    bad = await client.get(f"/v1.50/containers/{cid}/logs")
    assert bad.status == 400


async def test_lifecycle_endpoints(client: TestClient) -> None:
    cid = await create(client, {"Image": "busybox", "Cmd": ["sleep", "30"]}, name="life")
    assert (await client.post("/v1.50/containers/life/start")).status == 204
    assert (await client.post("/v1.50/containers/life/start")).status == 304
    listing = await (await client.get("/v1.50/containers/json")).json()
    assert [c["Names"] for c in listing] == [["/life"]]
    summary = listing[0]
    assert set(load_spec()["definitions"]["ContainerSummary"]["properties"]) - set(summary) <= {
        "ImageManifestDescriptor", "SizeRw", "SizeRootFs"}
    assert summary["State"] == "running" and summary["Status"].startswith("Up ")
    assert summary["Command"] == "sleep 30" and isinstance(summary["Created"], int)
    assert (await client.post("/v1.50/containers/life/kill?signal=BOGUS")).status == 400
    resp = await client.delete("/v1.50/containers/life")
    assert resp.status == 409
    assert (await client.post("/v1.50/containers/life/rename?name=life2")).status == 204
    assert (await client.post("/v1.50/containers/life2/stop?t=1")).status == 204
    assert (await client.post("/v1.50/containers/life2/stop")).status == 304
    state = (await (await client.get(f"/v1.50/containers/{cid}/json")).json())["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 143
    filtered = await client.get('/v1.50/containers/json?filters={"status":["exited"]}')
    assert [c["Names"] for c in await filtered.json()] == [["/life2"]]
    assert (await client.post("/v1.50/containers/life2/kill")).status == 409
    assert (await client.post("/v1.50/containers/life2/resize?h=10&w=x")).status == 400
    assert (await client.delete("/v1.50/containers/life2?force=1")).status == 204
    assert (await client.get("/v1.50/containers/life2/json")).status == 404
    wait = await client.post("/v1.50/containers/life2/wait?condition=bogus")
    assert wait.status in (400, 404)


async def test_wait_removed_with_auto_remove(client: TestClient) -> None:
    body = {**CREATE, "HostConfig": {"AutoRemove": True}}
    cid = await create(client, body)
    wait = await client.post(f"/v1.50/containers/{cid}/wait?condition=removed")
    assert wait.status == 200
    assert (await client.post(f"/v1.50/containers/{cid}/start")).status == 204
    assert json.loads(await asyncio.wait_for(wait.read(), 10))["StatusCode"] == 0
    assert (await client.get(f"/v1.50/containers/{cid}/json")).status == 404


async def raw_request(client: TestClient, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    await writer.drain()
    return reader, writer


async def read_headers(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def test_attach_hijack_with_stdin_half_close(client: TestClient) -> None:
    body = {"Image": "busybox", "Cmd": ["tr", "a-z", "A-Z"], "OpenStdin": True,
            "StdinOnce": True, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True}
    cid = await create(client, body)
    reader, writer = await raw_request(client, (
        f"POST /v1.50/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
        "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").encode())
    head = await read_headers(reader)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
    assert (await client.post(f"/v1.50/containers/{cid}/start")).status == 204
    writer.write(b"hello\n")
    await writer.drain()
    writer.write_eof()  # half-close, like the CLI after stdin EOF
    data = await asyncio.wait_for(reader.read(), 10)
    frames = FrameDecoder().feed(data)
    assert b"".join(f.payload for f in frames) == b"HELLO\n"
    writer.close()


async def test_commit(client: TestClient, wired: Any) -> None:
    cid = await create(client, name="com")
    resp = await client.post("/v1.50/commit?container=com&repo=img&tag=t1&comment=hi"
                             "&changes=ENV%20X%3D1&changes=CMD%20%5B%22echo%22%5D",
                             json={"Labels": {"l": "1"}})
    assert resp.status == 201, await resp.text()
    image_id = (await resp.json())["Id"]
    parent, diff, config, tag, comment, author = wired.containers.images.committed[-1]
    assert tag == "img:t1" and comment == "hi" and config["Cmd"] == ["echo"]
    assert "X=1" in config["Env"] and config["Labels"]["l"] == "1"
    assert image_id.startswith("sha256:")


async def test_wait_below_1_30_ignores_condition(client: TestClient) -> None:
    cid = await create(client, {"Image": "busybox", "Cmd": ["true"]})
    # not-running is the only behaviour: a created container answers at once
    resp = await client.post(f"/v1.29/containers/{cid}/wait?condition=bogus")
    assert resp.status == 200 and await resp.json() == {"StatusCode": 0, "Error": None}
