"""``POST /build`` and friends over HTTP, with an in-memory BuildRuntime behind them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from compat_api.app import create_app
from compat_api.routers.build import handlers
from runtime.engine import Engine
from tests.builder.fakes import FakeRuntime
from tests.builder.test_builder import BASE_CONFIG, context_tar


@pytest.fixture
def runtime(tmp_path: Path) -> FakeRuntime:
    (tmp_path / "scratch").mkdir()
    rt = FakeRuntime(tmp_path / "scratch")
    rt.add_image("busybox:latest", BASE_CONFIG)
    return rt


@pytest.fixture
async def client(aiohttp_client: Any, engine: Engine, runtime: FakeRuntime,
                 monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(handlers, "build_runtime", lambda request: runtime)
    return await aiohttp_client(create_app(engine))


def lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\r\n")
    return [json.loads(line) for line in body.split(b"\r\n") if line]


async def post(client: TestClient, content: str, path: str = "/v1.50/build", files: dict[str, str] | None = None,
               **params: str) -> Any:
    tar = context_tar({"Dockerfile": content, **(files or {})})
    return await client.post(path, params=params, data=tar, headers={"Content-Type": "application/x-tar"})


async def test_stream_contract(client: TestClient, runtime: FakeRuntime) -> None:
    resp = await post(client, "FROM busybox\nLABEL a=b\n", t="demo")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    messages = lines(await resp.read())
    assert messages[0] == {"stream": "Step 1/2 : FROM busybox"} and messages[1] == {"stream": "\n"}
    image_id = runtime.tags["demo:latest"]
    aux = [m for m in messages if "aux" in m]
    assert aux == [{"aux": {"ID": image_id}}]
    assert messages[-2:] == [{"stream": f"Successfully built {image_id[7:19]}\n"},
                             {"stream": "Successfully tagged demo:latest\n"}]
    assert messages.index(aux[0]) == len(messages) - 3


async def test_no_aux_before_api_1_30(client: TestClient) -> None:
    resp = await post(client, "FROM busybox\n", path="/v1.29/build")
    assert not [m for m in lines(await resp.read()) if "aux" in m]


async def test_quiet_sends_only_the_id(client: TestClient, runtime: FakeRuntime) -> None:
    resp = await post(client, "FROM busybox\nLABEL a=b\n", q="1", t="q")
    assert lines(await resp.read()) == [{"stream": runtime.tags["q:latest"] + "\n"}]


async def test_run_output_and_stderr_colour(client: TestClient, runtime: FakeRuntime) -> None:
    runtime.script = lambda config: (0, [("stdout", b"out\n"), ("stderr", b"err\n")], {})
    messages = lines(await (await post(client, "FROM busybox\nRUN x\n")).read())
    assert {"stream": "out\n"} in messages and {"stream": "\x1b[91merr\n\x1b[0m"} in messages


async def test_failure_after_output_is_in_band(client: TestClient, runtime: FakeRuntime) -> None:
    runtime.script = lambda config: (3, [], {})
    resp = await post(client, "FROM busybox\nRUN exit 3\n")
    assert resp.status == 200
    message = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert lines(await resp.read())[-1] == {"errorDetail": {"code": 3, "message": message}, "error": message}


async def test_quiet_failure_sends_the_held_output_then_the_error(client: TestClient) -> None:
    resp = await post(client, "FROM busybox\nCOPY missing /x\n", q="1")
    messages = lines(await resp.read())
    assert messages[0] == {"stream": "Step 1/2 : FROM busybox"}
    assert messages[-1]["error"].startswith("COPY failed: file not found in build context")
    assert "errorDetail" in messages[-1] and "code" not in messages[-1]["errorDetail"]


@pytest.mark.parametrize(("dockerfile", "params", "status", "message"), [
    ("FROM busybox\nFOO bar\n", {}, 400, "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM busybox\n", {"dockerfile": "Nope"}, 500, "Cannot locate specified Dockerfile: Nope"),
    ("", {}, 400, "the Dockerfile (Dockerfile) cannot be empty"),
    ("ENV X\n", {}, 400, "failed to parse Dockerfile: ENV must have two arguments"),
    ("FROM busybox\n", {"target": "x"}, 400, 'target stage "x" could not be found'),
    ("FROM busybox\n", {"squash": "1"}, 400, "squash is only supported with experimental mode"),
    ("FROM busybox\n", {"securityopt": "x"}, 400, "security options are not supported on linux"),
    ("FROM busybox\n", {"version": "3"}, 400, 'invalid version "3"'),
    ("FROM busybox\n", {"isolation": "hyperv"}, 400, 'unsupported isolation: "hyperv"'),
    ("FROM busybox\n", {"remote": "client-session"}, 400,
     "experimental session with v1 builder is no longer supported, use builder version v2 (BuildKit) instead"),
    ("FROM busybox\n", {"buildargs": "{nope"}, 400, None),
    ("FROM busybox\n", {"labels": "[1]"}, 400, None),
    ("FROM busybox\n", {"version": "2"}, 501, None),
    ("FROM busybox\n", {"remote": "https://example.com/x.git"}, 501, None),
    ("FROM nothere\n", {"q": "1"}, 200, None),
])
async def test_errors_before_output_get_a_status(client: TestClient, dockerfile: str, params: dict[str, str],
                                                 status: int, message: str | None) -> None:
    resp = await post(client, dockerfile, **params)
    assert resp.status == status
    if status != 200:
        body = await resp.json()
        assert set(body) == {"message"}
        if message is not None:
            assert body["message"] == message
    else:
        assert lines(await resp.read())[-1]["error"].startswith("pull access denied for nothere")


async def test_build_args_and_labels_reach_the_build(client: TestClient, runtime: FakeRuntime) -> None:
    resp = await post(client, "FROM busybox\nARG V\nLABEL v=$V\n", t="args",
                      buildargs=json.dumps({"V": "from-cli", "NULL": None}), labels=json.dumps({"extra": "1"}),
                      rm="False", nocache="False", forcerm="False", pull="False")
    messages = lines(await resp.read())
    assert {"stream": "[Warning] One or more build-args [NULL] were not consumed\n"} in messages
    config = runtime.images[runtime.tags["args:latest"]].config
    assert config["Labels"] == {"v": "from-cli", "extra": "1"}
    assert len(runtime.containers) == 3  # ARG + 2 LABEL steps: rm=False (docker-py's default) keeps them


async def test_prune_and_cancel(client: TestClient) -> None:
    resp = await client.post("/v1.50/build/prune")
    assert resp.status == 200 and await resp.json() == {"CachesDeleted": None, "SpaceReclaimed": 0}
    resp = await client.post("/v1.50/build/prune", params={"keep-storage": "x"})
    assert resp.status == 400
    resp = await client.post("/v1.50/build/cancel")
    assert resp.status == 400 and (await resp.json())["message"] == "build ID not provided"
    assert (await client.post("/v1.50/build/cancel", params={"id": "x"})).status == 200


@pytest.mark.parametrize("path", ["/session", "/grpc"])
async def test_buildkit_endpoints_are_not_served(client: TestClient, path: str) -> None:
    resp = await client.post("/v1.50" + path, headers={"Upgrade": "h2c", "Connection": "Upgrade"})
    assert resp.status == 404


async def test_engine_without_services(aiohttp_client: Any, engine: Engine) -> None:
    client = await aiohttp_client(create_app(engine))
    resp = await client.post("/v1.50/build", data=io.BytesIO(context_tar({"Dockerfile": "FROM x"})))
    assert resp.status == 501


async def test_pull_progress_is_streamed(client: TestClient, runtime: FakeRuntime) -> None:
    runtime.registry["alpine:latest"] = {"Cmd": ["sh"]}
    messages = lines(await (await post(client, "FROM alpine\n")).read())
    assert messages[2] == {"status": "Pulling from library/alpine", "id": "latest"}
    assert messages[3] == {"status": "Downloading", "progressDetail": {"current": 5, "total": 10},
                           "progress": "[=========================>                         ]       5B/10B",
                           "id": "abc"}
