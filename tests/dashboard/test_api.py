"""/api/ endpoints against a fake engine: what reaches the engine, what the browser gets back."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dashboard.api import summarize_stats
from dashboard.forms import FormError, RunForm
from dashboard.security import CSRF_HEADER
from tests.dashboard.conftest import FakeEngine, login

Client = TestClient[web.Request, web.Application]


async def test_engine_errors_keep_status_and_text(client: Client) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers/missing/stop", headers={CSRF_HEADER: csrf})
    assert resp.status == 404
    assert (await resp.json()) == {"message": "No such container: missing"}


async def test_unknown_action_is_404_without_reaching_the_engine(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers/c1/exterminate", headers={CSRF_HEADER: csrf})
    assert resp.status == 404
    assert fake_engine.calls == []


async def test_run_creates_then_starts(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers", headers={CSRF_HEADER: csrf}, json={
        "image": "busybox", "name": "web", "cmd": ["sh", "-c", "echo hi"], "ports": ["127.0.0.1:8080:80"],
        "env": ["A=1"], "volumes": ["data:/data"], "network": "", "restart": "always", "tty": False})
    assert resp.status == 201
    assert (await resp.json()) == {"Id": "new1"}
    assert fake_engine.calls == [("POST", "/containers/create?name=web"), ("POST", "/containers/new1/start")]


async def test_run_pulls_a_missing_image_first(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers", headers={CSRF_HEADER: csrf}, json={"image": "remote/app"})
    assert resp.status == 201
    assert fake_engine.calls == [("POST", "/containers/create"), ("POST", "/images/create?fromImage=remote/app&tag=latest"),
                                 ("POST", "/containers/create"), ("POST", "/containers/new1/start")]


async def test_run_form_error_is_400(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/containers", headers={CSRF_HEADER: csrf}, json={"image": "busybox", "ports": ["x:y"]})
    assert resp.status == 400
    assert "ports" in (await resp.json())["message"]
    assert fake_engine.calls == []


async def test_pull_streams_the_progress_lines(client: Client, fake_engine: FakeEngine) -> None:
    csrf = await login(client)
    resp = await client.post("/api/images/pull", headers={CSRF_HEADER: csrf}, json={"image": "127.0.0.1:5000/app:1.0"})
    assert resp.status == 200
    lines = [json.loads(line) for line in (await resp.text()).splitlines() if line.strip()]
    assert [m["status"] for m in lines] == ["Pulling fs layer", "Downloading", "Pull complete"]
    assert fake_engine.calls == [("POST", "/images/create?fromImage=127.0.0.1:5000/app&tag=1.0")]


def test_run_form_body_is_what_docker_run_sends() -> None:
    form = RunForm.parse({"image": "nginx", "ports": ["8080:80", "127.0.0.1:5353:53/udp", "9000"],
                          "env": ["A=1"], "volumes": ["/srv:/usr/share/nginx/html:ro"], "network": "web",
                          "restart": "unless-stopped", "cmd": [], "tty": True})
    body = form.body()
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert body["HostConfig"]["Binds"] == ["/srv:/usr/share/nginx/html:ro"]
    assert body["HostConfig"]["NetworkMode"] == "web"
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert body["Tty"] is True and "Cmd" not in body


@pytest.mark.parametrize("data, field", [
    ({"image": ""}, "image"), ({"image": "x", "restart": "sometimes"}, "restart"),
    ({"image": "x", "env": ["=1"]}, "env"), ({"image": "x", "volumes": ["data"]}, "volumes"),
    ({"image": "x", "cmd": "not a list"}, "cmd"),
])
def test_run_form_refuses(data: dict[str, object], field: str) -> None:
    with pytest.raises(FormError, match=field):
        RunForm.parse(data).body()


def test_stats_summary_computes_cpu_percent_as_docker_stats() -> None:
    sample = {
        "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 5000, "limit": 10000, "stats": {"inactive_file": 1000}},
        "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 7}, {"op": "Write", "value": 9}]},
    }
    assert summarize_stats(sample) == {"cpu": 40.0, "mem": 4000, "mem_limit": 10000, "rx": 11, "tx": 22,
                                       "blk_read": 7, "blk_write": 9}
    assert summarize_stats({})["cpu"] == 0.0
