from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient

from compat_api.streams.stdcopy import FrameDecoder


async def running(client: TestClient) -> str:
    resp = await client.post("/v1.50/containers/create", json={"Image": "busybox", "Cmd": ["sleep", "30"]})
    cid = (await resp.json())["Id"]
    assert (await client.post(f"/v1.50/containers/{cid}/start")).status == 204
    return str(cid)


async def test_exec_piped_stdin_and_exit_code(client: TestClient) -> None:
    cid = await running(client)
    resp = await client.post(f"/v1.50/containers/{cid}/exec", json={
        "User": "", "Privileged": False, "Tty": False, "AttachStdin": True, "AttachStderr": True,
        "AttachStdout": True, "Cmd": ["sh", "-c", "cat; echo e >&2; exit 7"]})
    assert resp.status == 201
    exec_id = (await resp.json())["Id"]
    before = await (await client.get(f"/v1.50/exec/{exec_id}/json")).json()
    assert before["ExitCode"] is None and before["Running"] is False
    assert before["ProcessConfig"] == {"arguments": ["-c", "cat; echo e >&2; exit 7"],
                                       "entrypoint": "sh", "privileged": False, "tty": False,
                                       "user": ""}
    reader, writer = await asyncio.open_connection(client.host, client.port)
    body = b'{"Detach":false,"Tty":false}\n'
    writer.write((f"POST /v1.50/exec/{exec_id}/start HTTP/1.1\r\nHost: x\r\n"
                  "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"piped-stdin\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED") and b"Api-Version: 1.50" in head
    writer.write_eof()
    frames = FrameDecoder().feed(await asyncio.wait_for(reader.read(), 10))
    assert [(int(f.stream), f.payload) for f in frames] == [(1, b"piped-stdin\n"), (2, b"e\n")]
    writer.close()
    for _ in range(50):
        after = await (await client.get(f"/v1.50/exec/{exec_id}/json")).json()
        if after["ExitCode"] is not None:
            break
        await asyncio.sleep(0.05)
    assert after["ExitCode"] == 7 and after["Running"] is False
    again = await client.post(f"/v1.50/exec/{exec_id}/start", json={"Detach": True})
    assert again.status == 409


async def test_exec_errors(client: TestClient) -> None:
    resp = await client.get("/v1.50/exec/nosuch/json")
    assert resp.status == 404 and (await resp.json())["message"] == "No such exec instance: nosuch"
    created = await client.post("/v1.50/containers/create", json={"Image": "busybox", "Cmd": ["true"]})
    cid = (await created.json())["Id"]
    resp = await client.post(f"/v1.50/containers/{cid}/exec", json={"Cmd": ["true"]})
    assert resp.status == 409
    cid = await running(client)
    resp = await client.post(f"/v1.50/containers/{cid}/exec", json={"Cmd": []})
    assert resp.status == 400


async def test_exec_detached(client: TestClient) -> None:
    cid = await running(client)
    exec_id = (await (await client.post(f"/v1.50/containers/{cid}/exec",
                                        json={"Cmd": ["sh", "-c", "exit 3"]})).json())["Id"]
    resp = await client.post(f"/v1.50/exec/{exec_id}/start", json={"Detach": True, "Tty": False})
    assert resp.status == 200
    for _ in range(50):
        info = json.loads(await (await client.get(f"/v1.50/exec/{exec_id}/json")).text())
        if info["ExitCode"] is not None:
            break
        await asyncio.sleep(0.05)
    assert info["ExitCode"] == 3


async def test_exec_create_reads_keys_case_insensitively_as_go(client: TestClient) -> None:
    cid = await running(client)
    resp = await client.post(f"/v1.50/containers/{cid}/exec",
                             json={"cmd": ["cat"], "detachKeys": "ctrl-x,x", "attachStdin": True})
    assert resp.status == 201
    exec_id = (await resp.json())["Id"]
    inspect = await (await client.get(f"/v1.50/exec/{exec_id}/json")).json()
    # dockerd shows the parsed keys ([]byte, base64): b"\x18x"
    assert inspect["DetachKeys"] == "GHg=" and inspect["ProcessConfig"]["entrypoint"] == "cat"
    # an exact match wins over a case-folded one
    resp = await client.post(f"/v1.50/containers/{cid}/exec",
                             json={"Cmd": ["true"], "DetachKeys": "ctrl-a", "detachkeys": "ctrl-b"})
    inspect = await (await client.get(f"/v1.50/exec/{(await resp.json())['Id']}/json")).json()
    assert inspect["DetachKeys"] == "AQ=="
    bad = await client.post(f"/v1.50/containers/{cid}/exec", json={"Cmd": ["true"], "detachKeys": "ctrl-"})
    assert bad.status == 500 and (await bad.json())["message"] == "Invalid escape keys (ctrl-) provided"


async def test_exec_resize_waits_for_the_start_as_dockerd(client: TestClient) -> None:
    cid = await running(client)
    resp = await client.post(f"/v1.50/containers/{cid}/exec", json={"Cmd": ["sleep", "5"], "Tty": True})
    exec_id = (await resp.json())["Id"]
    # the CLI's first resize can arrive before its start request: it waits, not 409
    resize = asyncio.ensure_future(client.post(f"/v1.50/exec/{exec_id}/resize?h=10&w=20"))
    await asyncio.sleep(0.2)
    assert not resize.done()
    start = await client.post(f"/v1.50/exec/{exec_id}/start", json={"Detach": True, "Tty": True})
    assert start.status == 200
    assert (await asyncio.wait_for(resize, 10)).status == 200
    missing = await client.post("/v1.50/exec/nosuch/resize?h=10&w=20")
    assert missing.status == 404
