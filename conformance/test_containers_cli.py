"""Container lifecycle through the stock CLI: run -d, ps, logs, stop/start/restart/kill, wait,
rm -f, rename, inspect, exec, commit. (Security profile and limits: test_security_cli.py.)"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def test_run_detached_and_ps(box: Box) -> None:
    name = box.run_d("--label", "tier=web", box.image, "sleep", "300")
    listed = box.ok("ps", "--no-trunc", "--filter", f"name={name}", "--format",
                    "{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Labels}}")
    assert listed.startswith(f'{name}|{box.image}|"sleep 300"|Up ')
    assert listed.rstrip().endswith("|tier=web")
    assert box.ok("ps", "-q", "--no-trunc", "--filter", "label=tier=web", "--filter",
                  f"name={name}").strip() == box.inspect(name)["Id"]
    assert box.ok("ps", "-q", "--filter", f"name={name}", "--filter", "status=exited") == ""
    box.ok("kill", name)
    box.wait_exited(name)
    assert box.ok("ps", "-q", "--filter", f"name={name}") == ""
    exited = box.ok("ps", "-a", "--filter", f"name={name}", "--filter", "exited=137",
                    "--format", "{{.Names}} {{.Status}}")
    assert re.fullmatch(rf"{name} Exited \(137\) .* ago\n", exited), exited


def test_logs_tail_timestamps_follow_since(box: Box) -> None:
    # pauses keep the two pipes' lines in order (they are read independently, as in dockerd)
    name = box.run_d(box.image, "sh", "-c",
                     "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 300")
    box.wait_until(name, lambda s: s["Running"])
    deadline = time.monotonic() + 10
    while "three" not in box.logs(name).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = box.logs(name)
    assert (logs.stdout, logs.stderr) == ("one\nthree\n", "two\n")
    assert box.logs(name, "--tail", "1").stdout == "three\n"
    stamped = box.logs(name, "-t", "--tail", "1").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n", stamped), stamped
    future = str(int(time.time()) + 3600)
    assert box.logs(name, "--since", future).stdout == ""
    past = datetime.now(timezone.utc).timestamp() - 3600
    assert "one" in box.logs(name, "--since", f"{past:.0f}").stdout


def test_logs_follow_streams_until_exit(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    proc = box.cli("logs", "-f", name, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "line 1\nline 2\nline 3\n"


def test_stop_runs_the_term_trap(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c",
                     "trap 'echo trapped; exit 0' TERM; while true; do sleep 0.1; done")
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    assert box.ok("stop", name) == f"{name}\n"
    state = box.state(name)
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert "trapped" in box.logs(name).stdout
    # a second stop is not an error (the daemon answers 304)
    assert box.ok("stop", name) == f"{name}\n"


def test_stop_timeout_then_kill(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    box.wait_until(name, lambda s: s["Running"])
    time.sleep(0.3)
    start = time.monotonic()
    box.ok("stop", "-t", "1", name)
    assert time.monotonic() - start < 10
    assert box.state(name)["ExitCode"] == 137


def test_start_restart_kill_wait(box: Box) -> None:
    # pid 1 ignores TERM unless it installs a handler
    name = box.run_d(box.image, "sh", "-c", "trap 'exit 3' TERM; " + TICKER)
    first = box.state(name)["StartedAt"]
    box.ok("restart", "-t", "1", name)
    state = box.state(name)
    assert state["Running"] and state["StartedAt"] != first
    assert box.ok("kill", name) == f"{name}\n"
    assert box.ok("wait", name) == "137\n"
    assert box.state(name)["ExitCode"] == 137
    assert box.ok("start", name) == f"{name}\n"
    assert box.state(name)["Running"]
    box.ok("kill", "-s", "TERM", name)
    assert box.wait_exited(name)["ExitCode"] == 3
    bad = box.cli("kill", name)
    assert bad.returncode == 1 and "is not running" in str(bad.stderr)


def test_wait_prints_exit_code(box: Box) -> None:
    name = box.run_d(box.image, "sh", "-c", "sleep 0.5; exit 42")
    assert box.ok("wait", name) == "42\n"


def test_rm_force_and_rename(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    refused = box.cli("rm", name)
    assert refused.returncode == 1
    assert "container is running" in str(refused.stderr) or "cannot remove a running" in str(refused.stderr)
    new = box.name()
    box.ok("rename", name, new)
    assert box.inspect(new)["Name"] == f"/{new}"
    missing = box.cli("container", "inspect", name)
    assert missing.returncode == 1 and f"No such container: {name}" in str(missing.stderr)
    assert box.ok("rm", "-f", new) == f"{new}\n"
    assert box.cli("container", "inspect", new).returncode == 1


def test_inspect_state_and_config(box: Box) -> None:
    name = box.name()
    box.ok("create", "--name", name, "--network", "none", "-e", "A=1", "-w", "/tmp",
           "--label", "x=y", box.image, "sh", "-c", "exit 5")
    created = box.inspect(name)
    assert created["State"]["Status"] == "created" and created["Name"] == f"/{name}"
    assert created["Config"]["Cmd"] == ["sh", "-c", "exit 5"]
    assert "A=1" in created["Config"]["Env"] and created["Config"]["WorkingDir"] == "/tmp"
    assert created["Config"]["Labels"] == {"x": "y"} and created["Config"]["Image"] == box.image
    assert created["Path"] == "sh" and created["Args"] == ["-c", "exit 5"]
    assert created["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert box.ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", name) == "json-file\n"
    box.ok("start", name)
    state = box.wait_exited(name)
    assert state["ExitCode"] == 5 and state["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert box.inspect(name)["LogPath"].endswith(f"{created['Id']}-json.log")


def test_exec_variants(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.wait_until(name, lambda s: s["Running"])
    piped = box.cli("exec", "-i", name, "sh", "-c", "cat; echo end", input="piped\n", timeout=30)
    assert (piped.returncode, piped.stdout) == (0, "piped\nend\n")
    out = box.ok("exec", "-u", "65534", "-w", "/tmp", "-e", "V=42", name,
                 "sh", "-c", "id -u; pwd; echo $V")
    assert out == "65534\n/tmp\n42\n"
    code = box.cli("exec", name, "sh", "-c", "exit 13")
    assert code.returncode == 13
    tty = box.cli("exec", "-t", name, "tty", input=b"", timeout=30)
    assert re.fullmatch(rb"/dev/pts/\d+\r\n", tty.stdout), tty.stdout
    missing = box.cli("exec", name, "/no/such")
    assert missing.returncode in (126, 127) and "no such file or directory" in str(missing.stdout + missing.stderr)


def test_commit_and_run_the_image(box: Box, tracker: ResourceTracker) -> None:
    name = box.name()
    proc = box.run("--name", name, box.image, "sh", "-c", "echo committed > /marker")
    assert proc.returncode == 0, proc.stderr
    ref = tracker.image(f"{unique('commit')}:v1")
    image_id = box.ok("commit", "-c", 'CMD ["cat", "/marker"]', "-m", "msg", name, ref).strip()
    assert image_id.startswith("sha256:")
    run = box.run("--rm", ref)
    assert (run.returncode, run.stdout) == (0, "committed\n"), run.stderr
    inspected = json.loads(box.ok("image", "inspect", ref))[0]
    assert inspected["Config"]["Cmd"] == ["cat", "/marker"] and inspected["Comment"] == "msg"
