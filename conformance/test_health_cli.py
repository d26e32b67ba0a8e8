"""Health checks through the stock CLI: ``--health-*`` run flags, an image ``HEALTHCHECK``,
``State.Health`` in inspect, the ``(healthy)`` status in ps, the ``health`` ps filter and
the probe/``health_status`` events."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(90)

FAST = ("--health-interval", "200ms", "--health-retries", "2")
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def health_of(box: Box, name: str, status: str) -> dict:  # type: ignore[type-arg]
    state = box.wait_until(
        name, lambda s: (s.get("Health") or {}).get("Status") == status, timeout=15)
    return state["Health"]  # type: ignore[no-any-return]


def ps_names(box: Box, *filters: str) -> set[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return set(box.ok("ps", "-a", *args, "--format", "{{.Names}}").split())


def test_health_cmd_true_becomes_healthy(box: Box) -> None:
    name = box.run_d("--health-cmd", "echo probe-ok", *FAST, box.image, "sleep", "300")
    health = health_of(box, name, "healthy")
    assert health["FailingStreak"] == 0
    assert 1 <= len(health["Log"]) <= 5
    entry = health["Log"][0]
    assert entry["ExitCode"] == 0 and entry["Output"] == "probe-ok\n"
    assert RFC3339_NANO.fullmatch(entry["Start"]) and RFC3339_NANO.fullmatch(entry["End"])
    assert entry["End"] >= entry["Start"]
    config = box.inspect(name)["Config"]["Healthcheck"]
    assert config == {"Test": ["CMD-SHELL", "echo probe-ok"], "Interval": 200_000_000,
                      "Retries": 2}
    status = box.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip()
    assert re.fullmatch(r"Up .+ \(healthy\)", status), status
    assert name in ps_names(box, "health=healthy")
    assert name not in ps_names(box, "health=unhealthy")
    assert name not in ps_names(box, "health=none")
    assert name not in ps_names(box, "health=starting")


def test_failing_probe_becomes_unhealthy_with_log(box: Box) -> None:
    name = box.run_d("--health-cmd", "echo bad; exit 3", *FAST, box.image, "sleep", "300")
    health = health_of(box, name, "unhealthy")
    assert health["FailingStreak"] >= 2
    assert len(health["Log"]) >= 2
    assert all(e["ExitCode"] == 3 and e["Output"] == "bad\n" for e in health["Log"])
    status = box.ok("ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip()
    assert re.fullmatch(r"Up .+ \(unhealthy\)", status), status
    assert name in ps_names(box, "health=unhealthy")
    assert name not in ps_names(box, "health=healthy")
    # at most five results are kept
    box.wait_until(name, lambda s: s["Health"]["FailingStreak"] >= 6, timeout=15)
    assert len(box.state(name)["Health"]["Log"]) == 5


def test_starting_until_first_probe_and_none_without_check(box: Box) -> None:
    slow = box.run_d("--health-cmd", "true", "--health-interval", "60s", box.image,
                     "sleep", "300")
    plain = box.run_d(box.image, "sleep", "300")
    health = box.state(slow)["Health"]
    assert health["Status"] == "starting" and health["FailingStreak"] == 0
    assert not health["Log"]
    assert "Health" not in box.state(plain)
    status = box.ok("ps", "--filter", f"name={slow}", "--format", "{{.Status}}").strip()
    assert re.fullmatch(r"Up .+ \(health: starting\)", status), status
    assert slow in ps_names(box, "health=starting")
    assert plain in ps_names(box, "health=none") and slow not in ps_names(box, "health=none")
    proc = box.cli("ps", "--filter", "health=sick")
    assert proc.returncode != 0
    assert "Unrecognised filter value for health: sick" in str(proc.stderr)


def test_probe_timeout_is_a_failure(box: Box) -> None:
    name = box.run_d("--health-cmd", "sleep 10", "--health-interval", "100ms",
                     "--health-timeout", "300ms", "--health-retries", "1", box.image,
                     "sleep", "300")
    began = time.monotonic()
    health = health_of(box, name, "unhealthy")
    assert time.monotonic() - began < 8
    entry = health["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (300ms)"


def test_probe_events(box: Box) -> None:
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = box.run_d("--health-cmd", "true", *FAST, box.image, "sleep", "300")
    health_of(box, name, "healthy")
    until = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = box.ok("events", "--since", since, "--until", until, "--filter",
                 f"container={name}", "--format", "{{.Action}}")
    actions = out.splitlines()
    assert "health_status: healthy" in actions
    assert actions.count("health_status: healthy") == 1
    first = actions.index("health_status: healthy")
    assert actions[first - 3:first] == ["exec_create: /bin/sh -c true",
                                        "exec_start: /bin/sh -c true", "exec_die"]


def test_monitor_stops_with_the_container(box: Box) -> None:
    name = box.run_d("--health-cmd", "true", *FAST, box.image, "sleep", "300")
    health_of(box, name, "healthy")
    box.ok("kill", name)
    box.wait_exited(name)
    probes = len(box.inspect(name)["State"]["Health"]["Log"])
    time.sleep(0.6)
    health = box.inspect(name)["State"]["Health"]
    assert len(health["Log"]) == probes
    assert health["Status"] == "unhealthy"  # dockerd 20.10 marks an exited container so
    assert name in ps_names(box, "health=unhealthy")
    box.ok("start", name)
    assert box.state(name)["Health"]["Status"] == "starting"
    assert len(box.state(name)["Health"]["Log"]) >= probes  # the log is kept


@pytest.fixture
def healthy_image(docker_cli: DockerCLI, busybox_image: str) -> Iterator[str]:
    ref = f"{unique('conf-health')}:latest"
    dockerfile = (f"FROM {busybox_image}\n"
                  "HEALTHCHECK --interval=200ms --retries=2 CMD [\"cat\", \"/etc/hostname\"]\n")
    proc = docker_cli("build", "-q", "-t", ref, "-", input=dockerfile, timeout=120)
    assert proc.returncode == 0, proc.stderr
    yield ref
    docker_cli("rmi", "-f", ref)


def test_image_healthcheck_runs_and_no_healthcheck_disables(box: Box, healthy_image: str) -> None:
    name = box.run_d(healthy_image, "sleep", "300")
    assert box.inspect(name)["Config"]["Healthcheck"] == {
        "Test": ["CMD", "cat", "/etc/hostname"], "Interval": 200_000_000, "Retries": 2}
    health = health_of(box, name, "healthy")
    assert health["Log"][0]["ExitCode"] == 0 and health["Log"][0]["Output"].strip()
    timed = box.run_d("--health-timeout", "2s", healthy_image, "sleep", "300")
    assert box.inspect(timed)["Config"]["Healthcheck"] == {
        "Test": ["CMD", "cat", "/etc/hostname"], "Interval": 200_000_000,
        "Timeout": 2_000_000_000, "Retries": 2}
    health_of(box, timed, "healthy")
    off = box.run_d("--no-healthcheck", healthy_image, "sleep", "300")
    assert box.inspect(off)["Config"]["Healthcheck"]["Test"] == ["NONE"]
    time.sleep(0.5)
    assert "Health" not in box.state(off)
    assert off in ps_names(box, "health=none")
