"""pause/unpause, top, stats, update, prune and diff through the stock CLI, with the raw
answers (status, message, JSON shape) checked on the socket as well."""

from __future__ import annotations

import io
import json
import tarfile
import time
from typing import Any
from urllib.parse import quote

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, unique
from conformance.rawhttp import RawHTTP, open_connection
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

# write-then-rename: a reader never sees the truncated file between two writes
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.05; done"
BUSY = "while true; do :; done"
ZERO_TIME = "0001-01-01T00:00:00Z"


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _count(box: Box, name: str) -> int:
    # docker cp works on paused containers (exec does not)
    proc = box.cli("cp", f"{name}:/count", "-", input=b"", timeout=30)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(bytes(proc.stdout))) as archive:
        member = archive.extractfile("count")
        assert member is not None
        return int(member.read().strip() or b"0")


def _events(box: Box, name: str, since: float) -> list[str]:
    out = box.ok("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                 "--filter", f"container={name}", "--filter", "type=container",
                 "--format", "{{.Action}}")
    return out.split()


# --- pause / unpause ---------------------------------------------------------------------


def test_pause_freezes_and_unpause_resumes(box: Box, raw: RawHTTP) -> None:
    since = time.time() - 1
    name = box.run_d(box.image, "sh", "-c", COUNTER)
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    assert box.ok("pause", name) == f"{name}\n"
    state = box.state(name)
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    listed = box.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}|{{.State}}")
    assert listed.endswith(" (Paused)|paused\n"), listed
    frozen = _count(box, name)
    time.sleep(0.5)
    assert _count(box, name) == frozen, "the container kept running while paused"
    assert box.ok("unpause", name) == f"{name}\n"
    time.sleep(0.5)
    assert _count(box, name) > frozen
    state = box.state(name)
    assert (state["Status"], state["Paused"]) == ("running", False)
    actions = [a for a in _events(box, name, since) if a in ("pause", "unpause")]
    assert actions == ["pause", "unpause"]


def test_pause_errors(box: Box, raw: RawHTTP) -> None:
    created = box.name()
    box.ok("create", "--name", created, "--network", "none", box.image, "sleep", "300")
    cid = box.inspect(created)["Id"]
    resp = raw.post(f"/containers/{created}/pause")
    assert resp.status == 409 and resp.error_message() == f"Container {cid} is not running"
    resp = raw.post(f"/containers/{created}/unpause")
    assert resp.status == 500 and resp.error_message() == f"Container {cid} is not paused"
    name = box.run_d(box.image, "sleep", "300")
    rid = box.inspect(name)["Id"]
    resp = raw.post(f"/containers/{name}/unpause")
    assert resp.status == 500 and resp.error_message() == f"Container {rid} is not paused"
    assert raw.post(f"/containers/{name}/pause").status == 204
    resp = raw.post(f"/containers/{name}/pause")
    assert resp.status == 409 and resp.error_message() == f"Container {rid} is already paused"
    exec_ = raw.post(f"/containers/{name}/exec", json_body={"Cmd": ["true"]})
    assert exec_.status == 409 and "is paused, unpause the container before exec" in \
        exec_.error_message()
    start = raw.post(f"/containers/{name}/start")
    assert start.status == 409
    assert start.error_message() == "cannot start a paused container, try unpause instead"
    assert raw.delete(f"/containers/{name}").status == 409
    assert raw.post("/containers/no-such-ctr-xyz/pause").status == 404
    assert raw.post(f"/containers/{name}/unpause").status == 204


def test_stop_kill_and_remove_paused(box: Box) -> None:
    since = time.time() - 1
    name = box.run_d(box.image, "sh", "-c",
                     "trap 'echo got TERM; exit 3' TERM; while true; do sleep 0.1; done")
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    box.ok("pause", name)
    started = time.monotonic()
    box.ok("stop", "-t", "5", name)
    assert time.monotonic() - started < 4, "stop waited for the timeout: TERM never arrived"
    state = box.state(name)
    assert (state["Status"], state["ExitCode"], state["Paused"]) == ("exited", 3, False)
    assert box.logs(name).stdout == "got TERM\n"
    actions = [a for a in _events(box, name, since)
               if a in ("pause", "kill", "unpause", "die", "stop")]
    assert actions == ["pause", "kill", "unpause", "die", "stop"]
    killed = box.run_d(box.image, "sleep", "300")
    box.ok("pause", killed)
    box.ok("kill", killed)
    state = box.wait_exited(killed)
    assert (state["ExitCode"], state["Paused"]) == (137, False)
    removed = box.run_d(box.image, "sleep", "300")
    box.ok("pause", removed)
    box.ok("rm", "-f", removed)
    assert box.cli("inspect", removed).returncode != 0


# --- top ---------------------------------------------------------------------------------


def test_top(box: Box, raw: RawHTTP) -> None:
    # busybox sh execs its last command: two processes, both sleeps
    name = box.run_d(box.image, "sh", "-c", "sleep 301 & sleep 302")
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    body = raw.get(f"/containers/{name}/top").json()
    assert body["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    commands = sorted(p[-1] for p in body["Processes"])
    assert commands == ["sleep 301", "sleep 302"], body
    assert all(isinstance(v, str) for p in body["Processes"] for v in p)
    pid = str(box.state(name)["Pid"])
    assert pid in [p[1] for p in body["Processes"]]
    custom = raw.get(f"/containers/{name}/top?ps_args=-o%20pid,comm").json()
    assert custom["Titles"] == ["PID", "COMMAND"]
    assert sorted(p[1] for p in custom["Processes"]) == ["sleep", "sleep"]
    out = box.ok("top", name)
    assert out.splitlines()[0].split() == body["Titles"] and "sleep 302" in out
    bad = raw.get(f"/containers/{name}/top?ps_args=-o%20user=PID")
    assert bad.status == 500 or bad.status == 400
    assert bad.error_message() == 'specifying "user=PID" is not allowed'
    box.ok("kill", name)
    box.wait_exited(name)
    cid = box.inspect(name)["Id"]
    stopped = raw.get(f"/containers/{name}/top")
    assert stopped.status == 409 and stopped.error_message() == f"Container {cid} is not running"


# --- stats -------------------------------------------------------------------------------


def _stats(raw: RawHTTP, name: str, query: str) -> dict[str, Any]:
    resp = raw.get(f"/containers/{name}/stats?{query}")
    assert resp.status == 200, resp.describe()
    body: dict[str, Any] = resp.json()
    return body


def test_stats_one_sample(box: Box, raw: RawHTTP) -> None:
    name = box.run_d("-m", "64m", box.image, "sh", "-c", BUSY)
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.5)
    started = time.monotonic()
    body = _stats(raw, name, "stream=0")
    assert time.monotonic() - started >= 0.5  # two samples about a second apart
    assert body["name"] == f"/{name}" and body["id"] == box.inspect(name)["Id"]
    assert body["read"] != ZERO_TIME and body["preread"] != ZERO_TIME
    cpu, pre = body["cpu_stats"], body["precpu_stats"]
    assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > pre["system_cpu_usage"] > 0
    assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"] > 0
    # a busy loop uses most of one CPU: the CLI's formula gives a sane percentage
    percent = ((cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"])
               / (cpu["system_cpu_usage"] - pre["system_cpu_usage"]) * cpu["online_cpus"] * 100)
    assert 10 < percent < 110 * cpu["online_cpus"], percent
    memory = body["memory_stats"]
    assert memory["limit"] == 64 * 1024 * 1024 and 0 < memory["usage"] < memory["limit"]
    assert isinstance(memory["stats"], dict) and memory["stats"]
    assert body["pids_stats"]["current"] >= 1
    assert set(body["blkio_stats"]) >= {"io_service_bytes_recursive", "io_serviced_recursive"}
    assert "networks" not in body  # --network none: no interfaces of its own
    one = _stats(raw, name, "stream=0&one-shot=1")
    assert one["read"] != ZERO_TIME and one["preread"] == ZERO_TIME
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0


def test_stats_stream_and_stopped(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    conn = open_connection(raw.host, timeout=10)
    try:
        conn.request("GET", f"/containers/{name}/stats")
        resp = conn.getresponse()
        assert resp.status == 200
        first = json.loads(resp.readline())
        second = json.loads(resp.readline())
    finally:
        conn.close()
    assert first["preread"] == ZERO_TIME
    assert second["preread"] == first["read"]
    assert second["precpu_stats"]["cpu_usage"] == first["cpu_stats"]["cpu_usage"]
    created = box.name()
    box.ok("create", "--name", created, "--network", "none", box.image, "true")
    idle = _stats(raw, created, "stream=0")
    assert idle["read"] == ZERO_TIME and idle["name"] == f"/{created}"
    assert idle["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert raw.get("/containers/no-such-ctr-xyz/stats?stream=0").status == 404


def test_stats_cli_no_stream(box: Box) -> None:
    busy = box.run_d("-m", "64m", box.image, "sh", "-c", BUSY)
    idle = box.run_d(box.image, "sleep", "300")
    time.sleep(0.5)
    out = box.ok("stats", "--no-stream", "--format",
                 "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", busy, idle)
    rows = {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()}
    cpu, mem, pids = rows[busy]
    assert float(cpu.rstrip("%")) > 10, out
    assert mem.endswith(" / 64MiB") and pids == "1", out
    cpu, mem, pids = rows[idle]
    assert float(cpu.rstrip("%")) < 20 and not mem.endswith(" / 0B"), out


# --- update ------------------------------------------------------------------------------


def _cgroup_value(box: Box, name: str, v1: str, v2: str) -> str:
    return box.ok("exec", name, "sh", "-c",
                  f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}").strip()


def test_update_applies_live(box: Box, raw: RawHTTP) -> None:
    since = time.time() - 1
    name = box.run_d("-m", "64m", box.image, "sleep", "300")
    box.ok("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "0.5",
           "--pids-limit", "50", "--restart", "on-failure:3", name)
    host = box.inspect(name)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["PidsLimit"]) == (
        128 << 20, 256 << 20, 500_000_000, 50)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert _cgroup_value(box, name, "memory/memory.limit_in_bytes", "memory.max") == str(128 << 20)
    assert _cgroup_value(box, name, "pids/pids.max", "pids.max") == "50"
    quota = _cgroup_value(box, name, "cpu/cpu.cfs_quota_us", "cpu.max")
    assert quota.split()[0] == "50000"
    assert "update" in _events(box, name, since)
    # dockerd's rules: NanoCPUs and a CPU quota exclude each other
    conflict = raw.post(f"/containers/{name}/update", json_body={"CpuQuota": 20000})
    assert conflict.status == 409
    assert conflict.error_message().endswith(
        "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    small = raw.post(f"/containers/{name}/update", json_body={"Memory": 1000})
    assert small.status == 400 and small.error_message() == "Minimum memory limit allowed is 6MB"
    ok = raw.post(f"/containers/{name}/update", json_body={"CpuShares": 512})
    assert ok.status == 200 and ok.json() == {"Warnings": None}
    assert box.inspect(name)["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    assert raw.post("/containers/no-such-ctr-xyz/update", json_body={}).status == 404


def test_update_memory_above_swap_needs_swap(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    cid = box.inspect(name)["Id"]
    resp = raw.post(f"/containers/{name}/update", json_body={"Memory": 32 << 20})
    assert resp.status == 409
    assert resp.error_message() == (
        f"Cannot update container {cid}: Memory limit should be smaller than already set "
        "memoryswap limit, update the memoryswap at the same time")
    stopped = box.name()
    box.ok("create", "--name", stopped, "--network", "none", box.image, "sh", "-c",
           "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
           "|| cat /sys/fs/cgroup/memory.max")
    box.ok("update", "--memory", "48m", "--memory-swap", "-1", stopped)
    assert box.ok("start", "-a", stopped).strip() == str(48 << 20)


# --- prune -------------------------------------------------------------------------------


def test_prune_by_label(box: Box, raw: RawHTTP) -> None:
    label = f"prune-test={unique('p')}"
    exited = [box.name() for _ in range(2)]
    for name in exited:
        box.run("--name", name, "--label", label, box.image, "sh", "-c", "echo x > /f")
    running = box.run_d("--label", label, box.image, "sleep", "300")
    other = box.name()
    box.run("--name", other, box.image, "true")
    ids = sorted(box.inspect(n)["Id"] for n in exited)
    filters = quote(json.dumps({"label": [label]}))
    resp = raw.post(f"/containers/prune?filters={filters}")
    assert resp.status == 200, resp.describe()
    body = resp.json()
    assert sorted(body["ContainersDeleted"]) == ids
    assert isinstance(body["SpaceReclaimed"], int) and body["SpaceReclaimed"] >= 4
    for name in exited:
        assert box.cli("inspect", name).returncode != 0
    assert box.state(running)["Running"] and box.cli("inspect", other).returncode == 0
    again = raw.post(f"/containers/prune?filters={filters}").json()
    assert again == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    bad = raw.post("/containers/prune?filters=" + quote(json.dumps({"bogus": ["x"]})))
    assert bad.status == 400 and bad.error_message().lower() == "invalid filter 'bogus'"
    until = raw.post("/containers/prune?filters=" + quote(json.dumps(
        {"until": ["garbage"], "label": [label]})))
    # a plain error in dockerd (500), like any unparsable time value
    assert until.status == 500
    assert until.error_message() == 'failed to parse value as time or duration: "garbage"'


def test_prune_cli_until(box: Box) -> None:
    label = f"prune-cli={unique('p')}"
    name = box.name()
    box.run("--name", name, "--label", label, box.image, "true")
    kept = box.ok("container", "prune", "-f", "--filter", f"label={label}", "--filter",
                  "until=1h")
    assert "Total reclaimed space" in kept and box.cli("inspect", name).returncode == 0
    out = box.ok("container", "prune", "-f", "--filter", f"label={label}")
    assert out.startswith("Deleted Containers:\n") and box.cli("inspect", name).returncode != 0


# --- diff --------------------------------------------------------------------------------


def test_diff(box: Box, raw: RawHTTP) -> None:
    name = box.name()
    box.run("--name", name, box.image, "sh", "-c",
            "echo x > /newf; rm /bin/ls; echo y >> /etc/passwd; mkdir -p /nd/sub; touch /nd/sub/a")
    # dockerd's order is not stable (its naive diff walks maps): compare as sets
    assert sorted(box.ok("diff", name).splitlines()) == [
        "A /nd", "A /nd/sub", "A /nd/sub/a", "A /newf", "C /bin", "C /etc", "C /etc/passwd",
        "D /bin/ls"]
    body = raw.get(f"/containers/{name}/changes").json()
    assert {"Path": "/bin/ls", "Kind": 2} in body and {"Path": "/newf", "Kind": 1} in body
    assert {"Path": "/etc/passwd", "Kind": 0} in body
    fresh = box.name()
    box.ok("create", "--name", fresh, "--network", "none", box.image, "true")
    assert raw.get(f"/containers/{fresh}/changes").json() is None
    running = box.run_d(box.image, "sleep", "300")
    assert box.ok("diff", running) == ""
    assert raw.get("/containers/no-such-ctr-xyz/changes").status == 404


# --- docker-py ---------------------------------------------------------------------------


def test_docker_py_extras(client: Any, box: Box, tracker: ResourceTracker) -> None:
    name = box.run_d(box.image, "sleep", "300")
    container = client.containers.get(name)
    container.pause()
    container.reload()
    assert container.status == "paused"
    container.unpause()
    container.reload()
    assert container.status == "running"
    top = container.top()
    assert top["Titles"][1] == "PID" and any("sleep 300" in p[-1] for p in top["Processes"])
    sample = container.stats(stream=False)
    assert sample["name"] == f"/{name}" and sample["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert container.update(mem_limit="96m", memswap_limit="-1") == {"Warnings": None}
    assert client.api.inspect_container(name)["HostConfig"]["Memory"] == 96 << 20
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as t:
        info = tarfile.TarInfo("py.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"py\n"))
    assert container.put_archive("/tmp", payload.getvalue()) is True
    chunks, stat = container.get_archive("/tmp/py.txt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as t:
        member = t.extractfile("py.txt")
        assert member is not None and member.read() == b"py\n"
    assert stat["name"] == "py.txt" and stat["size"] == 3
    assert {"Path": "/tmp/py.txt", "Kind": 1} in container.diff()
    exported = b"".join(container.export())
    with tarfile.open(fileobj=io.BytesIO(exported)) as t:
        assert "tmp/py.txt" in t.getnames()
    label = f"sdk-prune={unique('p')}"
    stopped = box.name()
    box.run("--name", stopped, "--label", label, box.image, "true")
    stopped_id = box.inspect(stopped)["Id"]
    report = client.containers.prune(filters={"label": label})
    assert report["ContainersDeleted"] == [stopped_id]
